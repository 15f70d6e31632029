"""Chunked, resumable uploads over REST: sessions, chunks in order, resume, limits, cancel,
and the same checks as a plain upload once the last chunk arrives."""

import io
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from PIL import Image as PILImage

from samapp.models import Image, UploadSession
from tests.conftest import media_files, png_bytes, zip_bytes
from tests.images.test_uploads import png_claiming

CHUNK = 64
CHUNK_TYPE = "application/offset+octet-stream"


@pytest.fixture(autouse=True)
def small_chunks(settings: Any) -> None:
    settings.SAM_UPLOAD_CHUNK_BYTES = CHUNK


@pytest.fixture
def manager(client_for: Callable[[str], Any]) -> Any:
    return client_for("manager")


def uploads_url(project: Any) -> str:
    return f"/api/projects/{project.id}/uploads/"


def open_session(client: Any, project: Any, name: str, size: int) -> Any:
    return client.post(uploads_url(project), {"name": name, "size": size}, format="json")


def send_chunk(client: Any, project: Any, upload_id: str, offset: Any, data: bytes) -> Any:
    return client.generic(
        "PATCH",
        f"{uploads_url(project)}{upload_id}/",
        data,
        content_type=CHUNK_TYPE,
        HTTP_UPLOAD_OFFSET=str(offset),
    )


def upload_whole(client: Any, project: Any, name: str, content: bytes) -> Any:
    """Open a session and send every chunk; answers the last chunk's response."""
    created = open_session(client, project, name, len(content))
    assert created.status_code == 201, created.json()
    upload_id = created.json()["id"]
    response = None
    for offset in range(0, len(content), CHUNK):
        response = send_chunk(client, project, upload_id, offset, content[offset : offset + CHUNK])
        if offset + CHUNK < len(content):
            assert response.status_code == 200, response.json()
            assert response.json()["offset"] == offset + CHUNK
            assert response.json()["result"] is None
    return response


def noisy_png(seed: int) -> bytes:
    """A PNG several chunks long (solid PNGs compress into about one chunk)."""
    buffer = io.BytesIO()
    noise = random.Random(seed).randbytes(40 * 30 * 3)
    PILImage.frombytes("RGB", (40, 30), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def chunk_objects(media_root: Any) -> list[Any]:
    return [path for path in media_files(media_root) if "upload-chunks" in str(path)]


# ---------------------------------------------------------------- happy paths


def test_image_in_chunks_is_stored_and_the_chunks_go(manager, project, users, media_root) -> None:
    content = noisy_png(1)
    assert len(content) > 2 * CHUNK
    response = upload_whole(manager, project, "big.png", content)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["offset"] == body["size"] == len(content)
    [created] = body["result"]["created"]
    assert (created["original_name"], created["width"], created["height"]) == ("big.png", 40, 30)
    image = Image.objects.get(pk=created["id"])
    assert image.uploaded_by == users["manager"]
    assert image.file.read() == content
    assert chunk_objects(media_root) == []
    assert UploadSession.objects.count() == 0
    assert manager.get(f"{uploads_url(project)}{body['id']}/").status_code == 404


def test_zip_in_chunks_stores_every_image(manager, project) -> None:
    archive = zip_bytes({f"{i}.png": png_bytes(9, 9, (i, 3, 3)) for i in range(3)})
    response = upload_whole(manager, project, "batch.zip", archive)
    assert response.status_code == 200, response.json()
    names = sorted(i["original_name"] for i in response.json()["result"]["created"])
    assert names == ["0.png", "1.png", "2.png"]


def test_second_upload_of_the_same_file_is_a_duplicate(manager, project) -> None:
    first = upload_whole(manager, project, "a.png", noisy_png(2)).json()["result"]
    again = upload_whole(manager, project, "copy.png", noisy_png(2)).json()["result"]
    assert again["created"] == []
    [duplicate] = again["duplicates"]
    assert duplicate["name"] == "copy.png"
    assert duplicate["existing_id"] == first["created"][0]["id"]


# ---------------------------------------------------------------- resume and order


def test_resume_after_an_interrupted_chunk(manager, project) -> None:
    content = noisy_png(3)
    upload_id = open_session(manager, project, "r.png", len(content)).json()["id"]
    assert send_chunk(manager, project, upload_id, 0, content[:CHUNK]).status_code == 200
    # The connection drops mid-chunk: the server sees a short body and does not count it.
    cut = send_chunk(manager, project, upload_id, CHUNK, content[CHUNK : CHUNK + 10])
    assert cut.status_code == 400
    # A request that died after storing its chunk but before counting it leaves an object.
    session = UploadSession.objects.get(pk=upload_id)
    default_storage.save(f"upload-chunks/{session.pk}/000001", ContentFile(b"stale"))
    # A new page asks where to resume and goes on from there.
    status = manager.get(f"{uploads_url(project)}{upload_id}/").json()
    assert status["offset"] == CHUNK
    response = None
    for offset in range(status["offset"], len(content), CHUNK):
        response = send_chunk(manager, project, upload_id, offset, content[offset : offset + CHUNK])
    assert response is not None, response.json()
    assert response.status_code == 200, response.json()
    [created] = response.json()["result"]["created"]
    assert Image.objects.get(pk=created["id"]).file.read() == content


def test_out_of_order_chunks_are_409_with_the_offset_to_resume(manager, project) -> None:
    content = noisy_png(4)
    upload_id = open_session(manager, project, "o.png", len(content)).json()["id"]
    ahead = send_chunk(manager, project, upload_id, CHUNK, content[CHUNK : 2 * CHUNK])
    assert ahead.status_code == 409
    assert ahead.json()["offset"] == 0
    assert send_chunk(manager, project, upload_id, 0, content[:CHUNK]).status_code == 200
    replay = send_chunk(manager, project, upload_id, 0, content[:CHUNK])
    assert replay.status_code == 409
    assert replay.json()["offset"] == CHUNK


# ---------------------------------------------------------------- bounds


def test_oversized_chunk_is_413_and_not_stored(manager, project, media_root) -> None:
    content = noisy_png(5)
    upload_id = open_session(manager, project, "x.png", len(content)).json()["id"]
    response = send_chunk(manager, project, upload_id, 0, content[: CHUNK + 1])
    assert response.status_code == 413
    assert response.json()["chunk_size"] == CHUNK
    assert chunk_objects(media_root) == []
    assert UploadSession.objects.get(pk=upload_id).received == 0


def test_chunk_past_the_declared_size_is_400(manager, project) -> None:
    upload_id = open_session(manager, project, "x.png", 10).json()["id"]
    response = send_chunk(manager, project, upload_id, 0, b"z" * 11)
    assert response.status_code == 400
    assert "1 to 10 bytes" in response.json()["detail"]


@pytest.mark.parametrize("offset", ["", "-1", "abc", "1e3", "9" * 40, "0x10"])
def test_bad_upload_offset_header_is_400(manager, project, offset) -> None:
    upload_id = open_session(manager, project, "x.png", 10).json()["id"]
    response = send_chunk(manager, project, upload_id, offset, b"z" * 10)
    assert response.status_code == 400
    assert "Upload-Offset" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x.png"},
        {"size": 5},
        {"name": "", "size": 5},
        {"name": "x.png", "size": 0},
        {"name": "x.png", "size": 2**60},
        {"name": "x" * 300, "size": 5},
        {"name": "x", "size": "a"},
    ],
)
def test_bad_session_input_is_400(manager, project, body) -> None:
    response = manager.post(uploads_url(project), body, format="json")
    assert response.status_code == 400
    assert UploadSession.objects.count() == 0


def test_declared_size_over_the_file_limits_is_413(manager, project, settings) -> None:
    settings.SAM_MAX_UPLOAD_BYTES = 1000
    settings.SAM_UPLOAD_MAX_BYTES = 5000
    assert open_session(manager, project, "a.png", 1001).status_code == 413
    assert open_session(manager, project, "a.zip", 5000).status_code == 201
    assert open_session(manager, project, "b.zip", 5001).status_code == 413


def test_pending_bytes_and_open_sessions_are_bounded_per_user(
    manager, client_for, project, settings
) -> None:
    settings.SAM_UPLOAD_MAX_PENDING_BYTES = 100
    settings.SAM_UPLOAD_MAX_OPEN = 2
    assert open_session(manager, project, "a.png", 60).status_code == 201
    over = open_session(manager, project, "b.png", 41)
    assert over.status_code == 413
    assert over.json()["pending"] == 60
    assert open_session(manager, project, "b.png", 40).status_code == 201
    assert open_session(manager, project, "c.png", 1).status_code == 429
    # another user's quota is their own
    assert open_session(client_for("owner"), project, "d.png", 100).status_code == 201


def test_abandoned_sessions_expire_and_are_purged(manager, project, settings, media_root) -> None:
    content = noisy_png(6)
    upload_id = open_session(manager, project, "old.png", len(content)).json()["id"]
    send_chunk(manager, project, upload_id, 0, content[:CHUNK])
    assert len(chunk_objects(media_root)) == 1
    UploadSession.objects.filter(pk=upload_id).update(
        updated_at=timezone.now() - timedelta(seconds=settings.SAM_UPLOAD_EXPIRY_SECONDS + 1)
    )
    assert manager.get(f"{uploads_url(project)}{upload_id}/").status_code == 404
    assert send_chunk(manager, project, upload_id, CHUNK, content[CHUNK:]).status_code == 404
    # expired sessions count against no quota, and the next session deletes them
    settings.SAM_UPLOAD_MAX_OPEN = 1
    assert open_session(manager, project, "new.png", 5).status_code == 201
    assert not UploadSession.objects.filter(pk=upload_id).exists()
    assert chunk_objects(media_root) == []


def test_cancel_deletes_the_session_and_its_chunks(manager, project, media_root) -> None:
    content = noisy_png(7)
    upload_id = open_session(manager, project, "c.png", len(content)).json()["id"]
    send_chunk(manager, project, upload_id, 0, content[:CHUNK])
    assert manager.delete(f"{uploads_url(project)}{upload_id}/").status_code == 204
    assert chunk_objects(media_root) == []
    assert manager.get(f"{uploads_url(project)}{upload_id}/").status_code == 404


# ---------------------------------------------------------------- hostile files


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("evil.zip", zip_bytes({"ok.png": png_bytes(40, 30), "../evil.png": png_bytes(40, 30)})),
        ("bomb.zip", zip_bytes({"ok.png": png_bytes(40, 30), "z.png": b"\x00" * 200_000})),
        ("bomb.png", png_claiming(100_000, 100_000) + b"\x00" * 200),
        ("fake.png", b"#!/bin/sh\n" * 30),
    ],
    ids=["zip-traversal", "zip-ratio-bomb", "pixel-bomb", "not-an-image"],
)
def test_hostile_file_through_chunks_is_400_and_stores_nothing(
    manager, project, media_root, name, content
) -> None:
    response = upload_whole(manager, project, name, content)
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith(name)
    assert Image.objects.count() == 0
    assert media_files(media_root) == []
    assert UploadSession.objects.count() == 0


def test_any_failure_to_open_the_image_is_400(manager, project, media_root, monkeypatch) -> None:
    """A plugin that replaces PIL.Image.open (as ultralytics' HEIF support does) may raise
    something other than Pillow's own errors; that is still "not an image", not a 500."""

    def open_with_missing_codec(*args: Any, **kwargs: Any) -> Any:
        raise ModuleNotFoundError("No module named 'pi_heif'")

    monkeypatch.setattr(PILImage, "open", open_with_missing_codec)
    response = upload_whole(manager, project, "photo.png", noisy_png(3))
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith("photo.png: not a readable image")
    assert Image.objects.count() == 0
    assert media_files(media_root) == []
    assert UploadSession.objects.count() == 0


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("role", ["viewer", "annotator", "reviewer"])
def test_members_who_cannot_manage_cannot_upload(client_for, project, role) -> None:
    response = open_session(client_for(role), project, "a.png", 10)
    assert response.status_code == 403
    assert UploadSession.objects.count() == 0


def test_sessions_of_others_and_foreign_projects_are_404(
    manager, client_for, project, other_project
) -> None:
    assert open_session(manager, other_project, "a.png", 10).status_code == 404
    upload_id = open_session(manager, project, "a.png", 10).json()["id"]
    owner = client_for("owner")
    url = f"{uploads_url(project)}{upload_id}/"
    assert owner.get(url).status_code == 404
    assert send_chunk(owner, project, upload_id, 0, b"z" * 10).status_code == 404
    assert owner.delete(url).status_code == 404
    assert client_for("outsider").get(url).status_code == 404
    assert client_for("anonymous").get(url).status_code in (401, 403)
    assert UploadSession.objects.filter(pk=upload_id, received=0).exists()


def test_purge_command_deletes_only_expired_sessions(manager, project, settings, media_root):
    content = noisy_png(8)
    stale, fresh = (
        open_session(manager, project, name, len(content)).json()["id"] for name in "ab"
    )
    for upload_id in (stale, fresh):
        send_chunk(manager, project, upload_id, 0, content[:CHUNK])
    UploadSession.objects.filter(pk=stale).update(
        updated_at=timezone.now() - timedelta(seconds=settings.SAM_UPLOAD_EXPIRY_SECONDS + 1)
    )
    out = io.StringIO()
    call_command("sam_purge_uploads", "--batch", "1", stdout=out)
    assert out.getvalue().strip() == "1 abandoned upload(s) deleted."
    assert list(UploadSession.objects.values_list("id", flat=True)) == [uuid.UUID(fresh)]
    assert [p.parent.name for p in chunk_objects(media_root)] == [fresh]


def test_a_lost_chunk_is_a_clean_400(manager, project, media_root) -> None:
    content = noisy_png(9)
    upload_id = open_session(manager, project, "lost.png", len(content)).json()["id"]
    send_chunk(manager, project, upload_id, 0, content[:CHUNK])
    default_storage.delete(f"upload-chunks/{upload_id}/000000")
    response = None
    for offset in range(CHUNK, len(content), CHUNK):
        response = send_chunk(manager, project, upload_id, offset, content[offset : offset + CHUNK])
    assert response is not None
    assert response.status_code == 400
    assert "missing" in response.json()["detail"]
    assert UploadSession.objects.count() == 0
    assert media_files(media_root) == []
