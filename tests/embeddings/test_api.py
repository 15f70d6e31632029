"""Embedding and decoder endpoints: bytes, headers, caching, permissions; priority requests."""

from typing import Any
from unittest import mock

import numpy as np
import pytest

from samapp.choices import EmbeddingStatus
from samapp.ml.tiny import SAM_TINY_CONFIG
from samapp.models import Embedding
from samapp.selectors.embeddings import embedding_read
from samapp.services import embeddings as service

C, S, IMG = (
    SAM_TINY_CONFIG.prompt_embed_dim,
    SAM_TINY_CONFIG.image_embedding_size,
    SAM_TINY_CONFIG.img_size,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(make_image, project) -> tuple[Any, Embedding]:
    image = make_image(project, width=40, height=20)
    with mock.patch.object(service, "_enqueue"):
        (row,) = service.embeddings_schedule(images=[image], model_key="sam_tiny")
    service.embeddings_compute_batch(embedding_id=row.pk)
    row.refresh_from_db()
    assert row.status == EmbeddingStatus.READY
    return image, row


def url(image: Any, model_key: str = "sam_tiny") -> str:
    return f"/api/embeddings/{model_key}/{image.sha256}/"


def test_embedding_bytes_and_headers(client_for, ready) -> None:
    image, row = ready
    response = client_for("viewer").get(url(image))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Embedding-Shape"] == f"1,{C},{S},{S}"
    assert response["X-Embedding-Dtype"] == "float16"
    assert response["X-Input-Size"] == f"{IMG // 2},{IMG}"
    assert response["X-Original-Size"] == "20,40"
    assert response["X-Model-Key"] == "sam_tiny"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["ETag"].startswith('"')
    assert not response["ETag"].startswith("W/")
    assert "Content-Encoding" not in response  # fp16 barely compresses: sent as is
    body = response.content
    assert len(body) == C * S * S * 2
    assert body == embedding_read(embedding=row)


def test_int8_form_is_scales_then_values_and_close_to_fp16(client_for, ready) -> None:
    image, _ = ready
    client = client_for("annotator")
    fp16 = np.frombuffer(client.get(url(image)).content, dtype="<f2").astype(np.float32)
    response = client.get(url(image) + "?dtype=int8")
    assert response.status_code == 200
    assert response["X-Embedding-Dtype"] == "int8"
    body = response.content
    scales = np.frombuffer(body[: C * 4], dtype="<f4")
    values = np.frombuffer(body[C * 4 :], dtype=np.int8).astype(np.float32).reshape(C, -1)
    restored = (values * scales[:, None]).ravel()
    assert np.abs(restored - fp16).max() <= scales.max() * 0.51 + 1e-2
    assert response["ETag"] != client.get(url(image))["ETag"]
    assert client.get(url(image) + "?dtype=fp32").status_code == 400


def test_etag_revalidation_gives_304(client_for, ready) -> None:
    image, _ = ready
    client = client_for("viewer")
    etag = client.get(url(image))["ETag"]
    again = client.get(url(image), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert client.get(url(image), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_non_members_anonymous_and_unknown_get_404_or_401(client_for, ready) -> None:
    image, _ = ready
    assert client_for("outsider").get(url(image)).status_code == 404
    assert client_for("anonymous").get(url(image)).status_code in (401, 403)
    assert client_for("viewer").get(url(image, "sam_vit_b")).status_code == 404
    assert client_for("viewer").get("/api/embeddings/sam_tiny/" + "0" * 64 + "/").status_code == 404


def test_not_ready_gives_409_with_status(client_for, make_image, project) -> None:
    image = make_image(project)
    with mock.patch.object(service, "_enqueue"):
        service.embeddings_schedule(images=[image], model_key="sam_tiny")
    response = client_for("viewer").get(url(image))
    assert response.status_code == 409
    assert response.json()["status"] == "pending"
    assert response.json()["url"] is None


def test_image_list_shows_embedding_state(client_for, make_image, project) -> None:
    images = [make_image(project) for _ in range(3)]
    with mock.patch.object(service, "_enqueue"):
        service.embeddings_schedule(images=images[:2], model_key="sam_tiny")
    Embedding.objects.filter(image_sha256=images[1].sha256).update(status="failed", error="boom")
    body = client_for("viewer").get(f"/api/projects/{project.id}/images/").json()
    states = {item["id"]: item["embedding"] for item in body["results"]}
    assert states[images[0].id]["status"] == "pending"
    assert states[images[1].id] == {
        "status": "failed",
        "url": None,
        "error": "boom",
        "model_key": "sam_tiny",
    }
    assert states[images[2].id]["status"] == "missing"


def test_post_embedding_requests_with_priority(client_for, make_image, project, users) -> None:
    image = make_image(project, width=16, height=12)
    follow = make_image(project, width=16, height=12, assignee=users["annotator"])
    with mock.patch.object(service, "_enqueue") as enqueue:
        response = client_for("annotator").post(
            f"/api/projects/{project.id}/images/{image.id}/embedding/"
        )
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert Embedding.objects.get(image_sha256=image.sha256).priority == service.PRIORITY_OPENED
    assert Embedding.objects.get(image_sha256=follow.sha256).priority == service.PRIORITY_NEXT
    assert (
        client_for("outsider")
        .post(f"/api/projects/{project.id}/images/{image.id}/embedding/")
        .status_code
        == 404
    )
    del enqueue


def test_post_embedding_computes_it_in_eager_mode(
    client_for, make_image, project, settings, django_capture_on_commit_callbacks
) -> None:
    image = make_image(project, width=16, height=12)
    with django_capture_on_commit_callbacks(execute=True):
        client_for("annotator").post(f"/api/projects/{project.id}/images/{image.id}/embedding/")
    body = client_for("annotator").get(f"/api/projects/{project.id}/images/{image.id}/").json()
    assert body["embedding"]["status"] == "ready"
    # A failed one is requeued by the same call.
    Embedding.objects.filter(image_sha256=image.sha256).update(status="failed", error="x")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("annotator").post(
            f"/api/projects/{project.id}/images/{image.id}/embedding/"
        )
    assert response.json()["status"] == "pending"  # status as of the request; then computed
    assert Embedding.objects.get(image_sha256=image.sha256).status == "ready"
