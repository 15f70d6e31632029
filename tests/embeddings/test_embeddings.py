"""Upload → embedding computed once, stored, announced; batching, claims, failures, priority."""

from typing import Any
from unittest import mock

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from samapp.choices import EmbeddingStatus
from samapp.ml.tiny import SAM_TINY_CONFIG
from samapp.models import Embedding
from samapp.selectors.embeddings import embedding_read
from samapp.services import embeddings as service
from samapp.services.embedding_claims import claim
from tests.conftest import png_bytes
from tests.fixtures import drain, receive_until

C, S, IMG = (
    SAM_TINY_CONFIG.prompt_embed_dim,
    SAM_TINY_CONFIG.image_embedding_size,
    SAM_TINY_CONFIG.img_size,
)


def upload(client: Any, project: Any, *contents: bytes) -> Any:
    files = [SimpleUploadedFile(f"f{i}.png", c, "image/png") for i, c in enumerate(contents)]
    response = client.post(
        f"/api/projects/{project.id}/images/", {"file": files}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    return response.json()["created"]


@pytest.mark.django_db(transaction=True)
async def test_upload_stores_embedding_and_tells_members_only(
    connect, project, other_project, client_for
) -> None:
    _, member = await connect(project.id, "viewer")
    await receive_until(member, "hello")
    _, stranger = await connect(other_project.id, "outsider")
    await receive_until(stranger, "hello")

    manager = await sync_to_async(client_for)("manager")
    [image] = await sync_to_async(upload)(manager, project, png_bytes(40, 30, (10, 200, 30)))

    ready = await receive_until(member, "embedding.ready", timeout=60)
    assert ready["payload"] == {"sha256": image["sha256"], "model_key": "sam_tiny"}
    embedding = await sync_to_async(Embedding.objects.get)(image_sha256=image["sha256"])
    assert embedding.status == EmbeddingStatus.READY
    assert embedding.attempts == 1
    assert embedding.shape == [1, C, S, S]
    assert embedding.original_size == [30, 40]
    assert embedding.input_size == [IMG * 3 // 4, IMG]
    blob = await sync_to_async(embedding_read)(embedding=embedding)
    assert len(blob) == embedding.byte_size == C * S * S * 2
    assert np.isfinite(np.frombuffer(blob, dtype="<f2")).all()
    int8 = await sync_to_async(embedding_read)(embedding=embedding, fmt="int8")
    assert len(int8) == C * 4 + C * S * S
    assert not [m for m in await drain(stranger) if m["event"].startswith("embedding.")]

    # The image JSON shows the state and where to fetch it.
    detail = await sync_to_async(manager.get)(f"/api/projects/{project.id}/images/{image['id']}/")
    assert detail.json()["embedding"]["status"] == "ready"
    assert detail.json()["embedding"]["url"] == f"/api/embeddings/sam_tiny/{image['sha256']}/"
    await member.disconnect()
    await stranger.disconnect()


@pytest.mark.django_db(transaction=True)
def test_same_content_in_two_projects_is_encoded_once(client_for, project, users) -> None:
    from samapp.services.projects import member_add, project_create

    second = project_create(name="Second", created_by=users["owner"], labels=[])
    member_add(project=second, user=users["manager"], role="manager")
    content = png_bytes(20, 20, (1, 2, 3))
    manager = client_for("manager")
    with mock.patch.object(service, "_encode", wraps=service._encode) as encode:
        upload(manager, project, content)
        upload(manager, second, content)
    assert encode.call_count == 1
    assert Embedding.objects.count() == 1


def _pending(make_image: Any, project: Any, n: int) -> list[Embedding]:
    images = [make_image(project, width=16, height=12) for _ in range(n)]
    with mock.patch.object(service, "_enqueue"):
        return service.embeddings_schedule(images=images, model_key="sam_tiny")


@pytest.mark.django_db
def test_a_worker_drains_pending_embeddings_in_one_batched_forward(make_image, project) -> None:
    rows = _pending(make_image, project, 5)
    with mock.patch.object(service, "_encode", wraps=service._encode) as encode:
        outcome = service.embeddings_compute_batch(embedding_id=rows[2].pk, batch_size=4)
    assert encode.call_count == 1
    assert len(encode.call_args.args[1]) == 4
    assert rows[2].pk in outcome.ready
    assert len(outcome.ready) == 4
    # The other messages are no-ops for finished rows and pick up what is left.
    assert service.embeddings_compute_batch(embedding_id=rows[2].pk).ready == []
    left = Embedding.objects.exclude(status=EmbeddingStatus.READY).get()
    assert service.embeddings_compute_batch(embedding_id=left.pk).ready == [left.pk]


@pytest.mark.django_db
def test_claims_are_exclusive_and_stale_claims_are_taken_over(
    make_image, project, settings
) -> None:
    (row,) = _pending(make_image, project, 1)
    assert claim([row.pk]) == [row.pk]
    assert claim([row.pk]) == []  # a second worker cannot take a live claim
    outcome = service.embeddings_compute_batch(embedding_id=row.pk)
    assert outcome.ready == []
    assert 0 < outcome.busy_for <= settings.SAM_EMBEDDING_CLAIM_TIMEOUT
    # The claimer died: once the claim is older than the timeout, the work is redone.
    Embedding.objects.filter(pk=row.pk).update(
        claimed_at=timezone.now()
        - timezone.timedelta(seconds=settings.SAM_EMBEDDING_CLAIM_TIMEOUT + 1)
    )
    assert service.embeddings_compute_batch(embedding_id=row.pk).ready == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmbeddingStatus.READY, 2)


@pytest.mark.django_db
def test_a_row_whose_worker_keeps_dying_is_failed_not_retried_forever(
    make_image, project, settings
) -> None:
    (row,) = _pending(make_image, project, 1)
    Embedding.objects.filter(pk=row.pk).update(attempts=settings.SAM_EMBEDDING_MAX_ATTEMPTS)
    assert service.embeddings_compute_batch(embedding_id=row.pk).failed == [row.pk]
    row.refresh_from_db()
    assert row.status == EmbeddingStatus.FAILED
    assert "attempts" in row.error


@pytest.mark.django_db(transaction=True)
async def test_a_broken_image_fails_alone_and_does_not_block_the_batch(
    connect, make_image, project
) -> None:
    rows = await sync_to_async(_pending)(make_image, project, 3)
    broken = await sync_to_async(lambda: rows[1].__class__.objects.get(pk=rows[1].pk))()
    image = await sync_to_async(project.images.get)(sha256=broken.image_sha256)
    await sync_to_async(default_storage.delete)(image.file.name)
    await sync_to_async(default_storage.save)(image.file.name, ContentFile(b"not an image"))
    _, socket = await connect(project.id, "annotator")
    await receive_until(socket, "hello")
    outcome = await sync_to_async(service.embeddings_compute_batch)(embedding_id=rows[0].pk)
    assert sorted(outcome.ready) == sorted([rows[0].pk, rows[2].pk])
    assert outcome.failed == [rows[1].pk]
    failed = await receive_until(socket, "embedding.failed")
    assert failed["payload"]["sha256"] == broken.image_sha256
    assert "Unreadable image" in failed["payload"]["error"]
    await socket.disconnect()


@pytest.mark.django_db
def test_opened_image_jumps_the_queue_and_next_assigned_images_are_preencoded(
    make_image, project, users, settings
) -> None:
    settings.SAM_PREENCODE_NEXT = 2
    _pending(make_image, project, 3)
    mine = [make_image(project, width=16, height=12, assignee=users["annotator"]) for _ in range(4)]
    with mock.patch.object(service, "_enqueue") as enqueue:
        opened = service.embedding_request(image=mine[0], user=users["annotator"])
        assert not enqueue.called
    assert opened.priority == service.PRIORITY_OPENED
    priorities = {
        e.image_sha256: e.priority for e in Embedding.objects.filter(model_key="sam_tiny")
    }
    assert [priorities.get(i.sha256) for i in mine] == [10, 5, 5, None]


@pytest.mark.django_db
def test_batch_fills_by_priority(make_image, project, users) -> None:
    bulk = _pending(make_image, project, 4)
    opened = make_image(project, width=16, height=12)
    with mock.patch.object(service, "_enqueue"):
        service.embeddings_schedule(images=[opened], model_key="sam_tiny", priority=10)
    outcome = service.embeddings_compute_batch(embedding_id=bulk[0].pk, batch_size=2)
    high = Embedding.objects.get(image_sha256=opened.sha256)
    assert sorted(outcome.ready) == sorted([bulk[0].pk, high.pk])
