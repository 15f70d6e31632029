"""Stored XSS and how files go out: script payloads in project and label names are stored
verbatim, answered as JSON, inert in the SPA (lit templates, no HTML sinks) and escaped in
every export format; uploaded files and exports are attachments with nosniff, never HTML."""

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><svg onload=alert(1)>",
    "x\nnc: 999\nnames: {0: pwned}",
    "a: b # c' \" {{7*7}} ${7*7}",
    "&lt;b&gt; &amp; \u2028\u2029 end",
]
EXPECTED = ["cat", "dog", *(p.strip() for p in PAYLOADS)]
HTML_SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|DOMParser|"
    r"createContextualFragment|srcdoc|unsafeHTML|unsafeSVG|\beval\(|new Function\("
)


def test_the_spa_has_no_html_sinks() -> None:
    """Everything the SPA shows goes through lit's html`` (text nodes, attribute values) or
    textContent: no source file writes markup from strings."""
    sources = sorted((ROOT / "frontend" / "src").rglob("*.ts"))
    assert len(sources) > 10
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HTML_SINKS.search(line)
    ]
    assert hits == []


def test_server_templates_do_not_switch_escaping_off() -> None:
    templates = sorted((ROOT / "samapp" / "templates").rglob("*.html"))
    for path in templates:
        text = path.read_text()
        assert "|safe" not in text, path
        assert "autoescape off" not in text, path


@pytest.fixture
def hostile_project(client_for: Any, project: Any, make_image: Any, users: Any) -> Any:
    from samapp.services.annotations import annotation_create
    from tests.conftest import rle_box

    owner = client_for("owner")
    response = owner.patch(
        f"/api/projects/{project.id}/", {"name": PAYLOADS[0] + " project"}, format="json"
    )
    assert response.status_code == 200, response.json()
    labels = []
    for index, name in enumerate(PAYLOADS):
        response = owner.post(
            f"/api/projects/{project.id}/labels/",
            {"name": name, "color": f"#0000{index:02x}"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert response["Content-Type"] == "application/json"
        assert response.json()["name"] == name.strip()
        labels.append(response.json()["id"])
    image = make_image(project, width=16, height=12, name="<img src=x onerror=alert(1)>.png")
    from samapp.models import Label

    for index, label_id in enumerate(labels):
        annotation_create(
            image=image,
            author=users["annotator"],
            rle=rle_box(12, 16, (index, 0, index + 3, 5)),
            label=Label.objects.get(pk=label_id),
        )
    project.refresh_from_db()
    return project


@pytest.mark.django_db
def test_api_returns_payloads_as_json_data(hostile_project: Any, client_for: Any) -> None:
    response = client_for("viewer").get(f"/api/projects/{hostile_project.id}/")
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = response.json()
    assert body["name"].startswith(PAYLOADS[0])
    assert {label["name"] for label in body["labels"]} >= {p.strip() for p in PAYLOADS}


@pytest.mark.django_db
def test_label_colour_cannot_carry_markup(project: Any, client_for: Any) -> None:
    owner = client_for("owner")
    for color in ('"><b>', "red;}x", "#12345g", "url(x)"):
        response = owner.post(
            f"/api/projects/{project.id}/labels/", {"name": "c", "color": color}, format="json"
        )
        assert response.status_code == 400, color


def _export(project: Any, fmt: str) -> zipfile.ZipFile:
    from tests.datasets.conftest import export_zip

    return export_zip(project, fmt)


@pytest.mark.django_db
def test_coco_export_is_json_escaped(hostile_project: Any) -> None:
    archive = _export(hostile_project, "coco")
    [name] = [n for n in archive.namelist() if n.endswith(".json")]
    raw = archive.read(name)
    document = json.loads(raw)  # one valid document whatever the names hold
    names = [c["name"] for c in document["categories"]]
    assert sorted(names) == sorted(EXPECTED)
    assert b"\nnc: 999" not in raw  # the newline stayed an escape inside its string


@pytest.mark.django_db
def test_yolo_data_yaml_quotes_names(hostile_project: Any) -> None:
    archive = _export(hostile_project, "yolo")
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["nc"] == len(EXPECTED)  # not 999: no key injected
    assert sorted(data["names"].values()) == sorted(EXPECTED)
    for entry in archive.namelist():  # file names come from ours, not from the image name
        assert "<" not in entry, entry
        assert ".." not in entry, entry


def _label_map_rows(text: str) -> list[list[str]]:
    rows = [line.split(":") for line in text.split("\n") if line and not line.startswith("#")]
    assert all(len(row) == 4 for row in rows), rows  # label:color_rgb:parts:actions
    return rows


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["voc", "png"])
def test_label_maps_cannot_be_broken_by_names(hostile_project: Any, fmt: str) -> None:
    """labelmap.txt (CVAT's format, no escaping) gets one row per label whatever the names
    hold; labelmap.json (png) keeps the exact names."""
    archive = _export(hostile_project, fmt)
    rows = _label_map_rows(archive.read("labelmap.txt").decode())
    assert len(rows) == 1 + len(EXPECTED)  # background + one per label: nothing injected
    assert "pwned" not in archive.read("labelmap.txt").decode().split("\n")[0]
    if fmt == "png":
        mapped = json.loads(archive.read("labelmap.json"))
        assert {entry["name"] for entry in mapped} >= set(EXPECTED)
    for entry in archive.namelist():
        assert "<" not in entry, entry
        assert ".." not in entry, entry


# ---------------------------------------------------------------- serving files


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    ["evil.html", "x.svg", 'a";\r\nSet-Cookie: x=1;.png', "<script>.png", "..%2F..%2Fetc.png"],
)
def test_image_file_is_an_attachment_never_html(
    name: str, client_for: Any, project: Any, make_image: Any
) -> None:
    image = make_image(project, name=name)
    response = client_for("viewer").get(f"/api/projects/{project.id}/images/{image.id}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]
    assert "Set-Cookie" not in response.headers
    assert not response.cookies
    for header, value in response.headers.items():
        assert "\n" not in value, header
        assert "\r" not in value, header


@pytest.mark.django_db
def test_export_download_is_an_attachment(hostile_project: Any, client_for: Any) -> None:
    from tests.datasets.conftest import run_export

    job = run_export(hostile_project, "coco")
    response = client_for("viewer").get(
        f"/api/projects/{hostile_project.id}/exports/{job.id}/download/"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()


@pytest.mark.django_db
def test_analytics_csv_is_an_attachment(hostile_project: Any, client_for: Any) -> None:
    response = client_for("owner").get(f"/api/projects/{hostile_project.id}/analytics.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"].startswith("text/csv")


@pytest.mark.django_db
def test_media_is_never_served_directly(client_for: Any, project: Any, make_image: Any) -> None:
    image = make_image(project)
    client = client_for("owner")
    for path in (f"/media/{image.file.name}", f"/{image.file.name}"):
        response = client.get(path)
        assert response.status_code in (302, 404), path
        assert png_bytes(1, 1)[:8] not in getattr(response, "content", b"")
