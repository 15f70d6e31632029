"""REST: export jobs (202, progress, download), import (multipart), permissions."""

import io
import json
import zipfile
from typing import Any

import pytest

from samapp.models import Annotation, ExportJob, Image
from tests.conftest import png_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def _exports(project: Any) -> str:
    return f"/api/projects/{project.id}/exports/"


def test_export_flow(
    dataset_project: Any, client_for: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "samapp.services.datasets.exports.broadcast",
        lambda **kwargs: events.append(kwargs),
    )
    monkeypatch.setattr("samapp.services.datasets.exports.PROGRESS_EVERY_SECONDS", 0.0)
    client = client_for("viewer")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _exports(dataset_project),
            {"format": "coco", "options": {"mask_format": "polygons", "tolerance": 0.5}},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["state"] == "queued"
    assert body["download_url"] is None
    assert body["options"]["tolerance"] == 0.5
    detail = client.get(f"{_exports(dataset_project)}{body['id']}/").json()
    assert detail["state"] == "done"
    assert detail["progress"] == 1.0
    assert detail["download_url"] == f"{_exports(dataset_project)}{body['id']}/download/"
    states = [e["payload"]["state"] for e in events]
    assert states[0] == "queued"
    assert states[1] == "running"
    assert states[-1] == "done"
    assert all(e["event"] == "job.progress" and e["payload"]["kind"] == "export" for e in events)
    assert any(0 < e["payload"]["progress"] < 1 for e in events)
    download = client.get(detail["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert "annotations/instances_train.json" in archive.namelist()
    listing = client.get(_exports(dataset_project)).json()
    assert [job["id"] for job in listing["results"]] == [body["id"]]


def test_export_validation_errors_are_located(dataset_project: Any, client_for: Any) -> None:
    client = client_for("owner")
    response = client.post(
        _exports(dataset_project),
        {
            "format": "coco",
            "options": {
                "tolerance": -1,
                "mask_format": "mesh",
                "holes": "keep",
                "filters": {"status": ["x"]},
                "zip": 1,
            },
        },
        format="json",
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p.startswith("options.tolerance:") for p in problems)
    assert any(p.startswith("options.mask_format:") for p in problems)
    assert any(p.startswith("options.holes:") for p in problems)
    assert any(p.startswith("options.filters.status:") for p in problems)
    assert any(p.startswith("options.zip:") for p in problems)
    assert (
        client.post(_exports(dataset_project), {"format": "tiff"}, format="json").status_code == 400
    )
    assert ExportJob.objects.count() == 0


def test_download_before_done_is_409(dataset_project: Any, client_for: Any) -> None:
    client = client_for("viewer")
    job = client.post(
        _exports(dataset_project), {"format": "yolo"}, format="json"
    ).json()  # not committed: stays queued
    response = client.get(f"{_exports(dataset_project)}{job['id']}/download/")
    assert response.status_code == 409


def test_non_members_get_404_everywhere(
    dataset_project: Any, client_for: Any, other_project: Any
) -> None:
    from tests.datasets.conftest import run_export

    job = run_export(dataset_project, "coco")
    outsider = client_for("outsider")
    base = _exports(dataset_project)
    assert outsider.get(base).status_code == 404
    assert outsider.post(base, {"format": "coco"}, format="json").status_code == 404
    assert outsider.get(f"{base}{job.id}/").status_code == 404
    assert outsider.get(f"{base}{job.id}/download/").status_code == 404
    assert outsider.post(f"/api/projects/{dataset_project.id}/imports/", {}).status_code == 404
    assert client_for("anonymous").get(base).status_code in (401, 403, 404)
    # a job id from another project is not reachable through one's own project
    owner_of_other = client_for("outsider")
    assert (
        owner_of_other.get(f"/api/projects/{other_project.id}/exports/{job.id}/").status_code == 404
    )
    assert (
        owner_of_other.get(
            f"/api/projects/{other_project.id}/exports/{job.id}/download/"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("role", "can_import"),
    [
        ("owner", True),
        ("manager", True),
        ("reviewer", False),
        ("annotator", False),
        ("viewer", False),
    ],
)
def test_import_needs_manage_export_needs_view(
    project: Any, client_for: Any, role: str, can_import: bool
) -> None:
    client = client_for(role)
    assert client.post(_exports(project), {"format": "png"}, format="json").status_code == 202
    payload = zip_bytes(
        {
            "images/a.png": png_bytes(16, 16),
            "c.json": json.dumps(
                {
                    "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 16}],
                    "categories": [{"id": 1, "name": "cat"}],
                    "annotations": [
                        {"image_id": 1, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]]}
                    ],
                }
            ).encode(),
        }
    )
    upload = io.BytesIO(payload)
    upload.name = "d.zip"
    response = client.post(
        f"/api/projects/{project.id}/imports/", {"file": upload}, format="multipart"
    )
    if can_import:
        assert response.status_code == 201, response.json()
        assert response.json()["annotations_created"] == 1
    else:
        assert response.status_code == 403
        assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("format", "entry"), [("cvat", "annotations.xml"), ("labelstudio", "tasks.json")]
)
def test_cvat_and_label_studio_export_then_import_over_rest(
    dataset_project: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    format: str,
    entry: str,
) -> None:
    client = client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        body = client.post(
            _exports(dataset_project),
            {"format": format, "options": {"mask_format": "polygons", "holes": "fill"}},
            format="json",
        ).json()
    detail = client.get(f"{_exports(dataset_project)}{body['id']}/").json()
    assert detail["state"] == "done"
    assert detail["options"]["holes"] == "fill"
    payload = b"".join(client.get(detail["download_url"]).streaming_content)
    assert entry in zipfile.ZipFile(io.BytesIO(payload)).namelist()
    upload = io.BytesIO(payload)
    upload.name = "d.zip"
    response = client.post(
        f"/api/projects/{dataset_project.id}/imports/",
        {"file": upload, "format": format},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["format"] == format
    assert response.json()["annotations_created"] == 3  # labeled, not rejected


def test_import_rejection_is_a_400_listing_problems(project: Any, client_for: Any) -> None:
    upload = io.BytesIO(
        zip_bytes({"a.png": png_bytes(16, 16), "c.json": b'{"images": [{"id": "x"}]'})
    )
    upload.name = "d.zip"
    response = client_for("manager").post(
        f"/api/projects/{project.id}/imports/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "c.json: not valid JSON" in response.json()["detail"]
    upload = io.BytesIO(b"not a zip")
    upload.name = "d.zip"
    response = client_for("manager").post(
        f"/api/projects/{project.id}/imports/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "not a readable zip" in response.json()["detail"]
    assert (Image.objects.count(), Annotation.objects.count()) == (0, 0)


def test_admin_action_starts_exports(
    dataset_project: Any, client_for: Any, users: dict[str, Any]
) -> None:
    from django.test import Client

    users["owner"].is_staff = users["owner"].is_superuser = True
    users["owner"].save()
    browser = Client()
    browser.force_login(users["owner"])
    response = browser.post(
        "/admin/samapp/project/",
        {"action": "start_yolo_export", "_selected_action": [dataset_project.id]},
        follow=True,
    )
    assert response.status_code == 200
    assert ExportJob.objects.filter(project=dataset_project, format="yolo").count() == 1
