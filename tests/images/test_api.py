"""Images over REST: uploads (one, many, zip) with a token, listing, filters, downloads."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from samapp.models import Embedding, Image
from tests.conftest import jpeg_bytes, media_files, png_bytes, zip_bytes
from tests.images.test_uploads import png_claiming


def upload_file(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def manager(client_for: Callable[[str], Any]) -> Any:
    return client_for("manager")


def images_url(project: Any) -> str:
    return f"/api/projects/{project.id}/images/"


def post_files(client: Any, project: Any, *files: SimpleUploadedFile) -> Any:
    return client.post(images_url(project), {"file": list(files)}, format="multipart")


# ---------------------------------------------------------------- uploads


def test_upload_one_image(manager, project, users, media_root) -> None:
    response = post_files(manager, project, upload_file("cat.png", png_bytes(9, 7)))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["duplicates"] == []
    [created] = body["created"]
    assert (created["original_name"], created["format"], created["width"], created["height"]) == (
        "cat.png",
        "PNG",
        9,
        7,
    )
    image = Image.objects.get(pk=created["id"])
    assert image.project == project
    assert image.uploaded_by == users["manager"]
    assert image.status == "new"
    # stored under a content-addressed name, not the uploader's
    [stored] = media_files(media_root)
    assert stored.name == f"{image.sha256}.png"
    assert "cat" not in str(stored)
    # an embedding for the project's model is scheduled, once per content
    assert Embedding.objects.filter(
        image_sha256=image.sha256, model_key=project.default_model_key
    ).exists()


def test_upload_many_images(manager, project) -> None:
    response = post_files(
        manager,
        project,
        upload_file("a.png", png_bytes(4, 4, (1, 0, 0))),
        upload_file("b.jpg", jpeg_bytes(5, 5), "image/jpeg"),
        upload_file("c.png", png_bytes(6, 4, (3, 0, 0))),
    )
    assert response.status_code == 201
    assert [c["original_name"] for c in response.json()["created"]] == ["a.png", "b.jpg", "c.png"]
    assert Image.objects.filter(project=project).count() == 3


def test_upload_zip_with_a_token_then_list(
    client_for, project, users, django_capture_on_commit_callbacks, embedding_tasks
) -> None:
    # The "done when": a token client uploads a zip and sees the images listed.
    from rest_framework.test import APIClient

    token = APIClient().post(
        "/api/auth/token/", {"username": "manager", "password": "pw-manager"}, format="json"
    )
    assert token.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    archive = zip_bytes(
        {
            "photos/a.png": png_bytes(4, 4, (1, 0, 0)),
            "photos/b.png": png_bytes(4, 4, (2, 0, 0)),
            "c.jpg": jpeg_bytes(3, 2),
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_files(client, project, upload_file("batch.zip", archive, "application/zip"))
    assert response.status_code == 201, response.json()
    assert len(response.json()["created"]) == 3
    assert len(embedding_tasks) == 3  # one embedding job per new image content

    listed = client.get(images_url(project))
    assert listed.status_code == 200
    assert listed.json()["count"] == 3
    assert sorted(i["original_name"] for i in listed.json()["results"]) == [
        "a.png",
        "b.png",
        "c.jpg",
    ]


def test_duplicates_are_reported_not_stored(manager, project, media_root) -> None:
    first = post_files(manager, project, upload_file("a.png", png_bytes(4, 4, (1, 0, 0))))
    existing_id = first.json()["created"][0]["id"]
    again = post_files(
        manager,
        project,
        upload_file("a-copy.png", png_bytes(4, 4, (1, 0, 0))),
        upload_file("new.png", png_bytes(4, 4, (2, 0, 0))),
    )
    assert again.status_code == 201
    body = again.json()
    assert [c["original_name"] for c in body["created"]] == ["new.png"]
    assert body["duplicates"] == [
        {
            "name": "a-copy.png",
            "sha256": first.json()["created"][0]["sha256"],
            "existing_id": existing_id,
        }
    ]
    only_duplicates = post_files(manager, project, upload_file("x.png", png_bytes(4, 4, (1, 0, 0))))
    assert only_duplicates.status_code == 200
    assert only_duplicates.json()["created"] == []
    assert Image.objects.filter(project=project).count() == 2
    assert len(media_files(media_root)) == 2


def test_exif_rotated_jpeg_gets_oriented_size(manager, project) -> None:
    response = post_files(
        manager, project, upload_file("p.jpg", jpeg_bytes(30, 20, exif_orientation=6), "image/jpeg")
    )
    assert response.status_code == 201
    created = response.json()["created"][0]
    assert (created["width"], created["height"]) == (20, 30)


GOOD = png_bytes(4, 4, (9, 9, 9))
BAD_UPLOADS = {
    "html-renamed-png": ("page.png", b"<!doctype html><html><script>alert(1)</script></html>"),
    "svg-renamed-png": ("icon.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>'),
    "truncated-png": ("cut.png", png_bytes(64, 64, (1, 2, 3))[:100]),
    "pixel-bomb-header": ("bomb.png", png_claiming(60_000, 60_000)),
    "zip-dotdot": ("a.zip", zip_bytes({"ok.png": GOOD, "../evil.png": GOOD})),
    "zip-absolute": ("a.zip", zip_bytes({"ok.png": GOOD, "/tmp/evil.png": GOOD})),
    "zip-symlink": ("a.zip", zip_bytes({"ok.png": GOOD}, symlinks={"l.png": "/etc/passwd"})),
    "zip-nested": ("a.zip", zip_bytes({"ok.png": GOOD, "in.zip": zip_bytes({"x.png": GOOD})})),
    "zip-ratio-bomb": ("a.zip", zip_bytes({"ok.png": GOOD, "z.png": b"\x00" * 2_000_000})),
    "zip-duplicate-names": (
        "a.zip",
        zip_bytes([("ok.png", GOOD), ("ok.png", png_bytes(4, 4, (1, 1, 1)))]),
    ),
    "zip-non-image": ("a.zip", zip_bytes({"ok.png": GOOD, "run.sh": b"#!/bin/sh\nrm -rf /"})),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_400_and_writes_nothing(case: str, manager, project, media_root) -> None:
    name, content = BAD_UPLOADS[case]
    # a good image in the same request: the whole request is rejected, nothing stored
    response = post_files(
        manager, project, upload_file("fine.png", png_bytes(3, 3)), upload_file(name, content)
    )
    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert Image.objects.count() == 0
    assert Embedding.objects.count() == 0
    assert media_files(media_root) == []


@pytest.mark.parametrize(
    ("setting", "value", "content"),
    [
        ("SAM_MAX_IMAGE_PIXELS", 99, png_bytes(10, 10)),
        ("SAM_MAX_UPLOAD_BYTES", 50, png_bytes(10, 10)),
        (
            "SAM_MAX_ARCHIVE_ENTRIES",
            2,
            zip_bytes({f"{i}.png": png_bytes(2, 2, (i, 0, 0)) for i in range(3)}),
        ),
        ("SAM_MAX_ARCHIVE_TOTAL_BYTES", 50, zip_bytes({"a.png": png_bytes(20, 20, (1, 0, 0))})),
    ],
    ids=["pixels", "bytes", "entries", "archive-total"],
)
def test_caps_follow_settings(
    setting, value, content, settings, manager, project, media_root
) -> None:
    setattr(settings, setting, value)
    response = post_files(
        manager, project, upload_file("x.zip" if content[:2] == b"PK" else "x.png", content)
    )
    assert response.status_code == 400
    assert "limit" in response.json()["detail"] or "more than" in response.json()["detail"]
    assert Image.objects.count() == 0
    assert media_files(media_root) == []


def test_upload_without_file_is_400(manager, project) -> None:
    response = manager.post(images_url(project), {}, format="multipart")
    assert response.status_code == 400
    assert "No file" in response.json()["detail"]


def test_upload_as_json_is_415(manager, project) -> None:
    response = manager.post(images_url(project), {"file": "x"}, format="json")
    assert response.status_code == 415


# ---------------------------------------------------------------- listing and filters


@pytest.fixture
def five_images(project, make_image) -> list[Image]:
    return [make_image(project) for _ in range(5)]


def test_pagination(client_for, project, five_images) -> None:
    client = client_for("viewer")
    first = client.get(images_url(project), {"page_size": 2})
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 5
    assert [i["id"] for i in body["results"]] == [i.id for i in five_images[:2]]
    assert body["previous"] is None
    assert "page=2" in body["next"]
    last = client.get(images_url(project), {"page_size": 2, "page": 3}).json()
    assert [i["id"] for i in last["results"]] == [five_images[4].id]
    assert last["next"] is None
    assert client.get(images_url(project), {"page": 99}).status_code == 404


def test_filters_by_status_assignee_and_label(
    client_for, project, users, make_image, make_annotation
) -> None:
    cat, dog = project.labels.order_by("id")
    new = make_image(project)
    done = make_image(project, status="done", assignee=users["annotator"])
    mine = make_image(project, status="in_progress", assignee=users["annotator"])
    make_annotation(done, label=cat)
    make_annotation(done, label=cat, box=(0, 0, 2, 2))
    make_annotation(mine, label=dog)
    client = client_for("viewer")

    def ids(**params: Any) -> list[int]:
        response = client.get(images_url(project), params)
        assert response.status_code == 200, response.json()
        return [i["id"] for i in response.json()["results"]]

    assert ids() == [new.id, done.id, mine.id]
    assert ids(status="done") == [done.id]
    assert ids(status="new") == [new.id]
    assert ids(assignee=users["annotator"].id) == [done.id, mine.id]
    assert ids(assignee=users["annotator"].id, status="in_progress") == [mine.id]
    assert ids(label=cat.id) == [done.id]  # once, though it has two cat annotations
    assert ids(label=dog.id) == [mine.id]
    for bad in ({"status": "nope"}, {"assignee": "x"}, {"label": "cat"}):
        response = client.get(images_url(project), bad)
        assert response.status_code == 400
        assert "errors" in response.json()


def test_other_projects_images_are_invisible(
    client_for, project, other_project, make_image
) -> None:
    foreign = make_image(other_project)
    client = client_for("owner")
    assert client.get(images_url(project)).json()["count"] == 0
    for suffix in ("", "file/", "annotations/"):
        url = f"{images_url(project)}{foreign.id}/{suffix}"
        assert client.get(url).status_code == 404, url


# ---------------------------------------------------------------- detail, update, delete


def test_image_patch_validates_status_and_assignee(client_for, project, users, make_image) -> None:
    image = make_image(project)
    url = f"{images_url(project)}{image.id}/"
    manager = client_for("manager")
    assert manager.patch(url, {"status": "bogus"}, format="json").status_code == 400
    response = manager.patch(url, {"assignee": users["outsider"].id}, format="json")
    assert response.status_code == 400
    assert "member" in response.json()["detail"]
    response = manager.patch(
        url, {"assignee": users["annotator"].id, "status": "in_progress"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["assignee"], response.json()["status"]) == (
        users["annotator"].id,
        "in_progress",
    )
    response = manager.patch(url, {"assignee": None}, format="json")
    assert response.json()["assignee"] is None


def test_image_delete_removes_row_then_file(
    client_for, project, make_image, media_root, django_capture_on_commit_callbacks
) -> None:
    image = make_image(project)
    assert len(media_files(media_root)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("manager").delete(f"{images_url(project)}{image.id}/")
    assert response.status_code == 204
    assert not Image.objects.filter(pk=image.id).exists()
    assert media_files(media_root) == []


# ---------------------------------------------------------------- download


@pytest.mark.parametrize(
    ("name", "content", "mime"),
    [
        ("cat.png", png_bytes(6, 5, (7, 7, 7)), "image/png"),
        ("dog.jpg", jpeg_bytes(6, 5), "image/jpeg"),
    ],
)
def test_file_download_is_an_attachment_with_the_exact_bytes(
    name, content, mime, manager, client_for, project
) -> None:
    created = post_files(manager, project, upload_file(name, content, mime)).json()["created"][0]
    response = client_for("viewer").get(f"{images_url(project)}{created['id']}/file/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Disposition"].startswith("attachment")
    assert name in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == mime
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["ETag"] == f'"{created["sha256"]}"'


def test_file_download_needs_membership(client_for, project, make_image) -> None:
    image = make_image(project)
    url = f"{images_url(project)}{image.id}/file/"
    assert client_for("outsider").get(url).status_code == 404
    assert client_for("anonymous").get(url).status_code in (401, 403)
