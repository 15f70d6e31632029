"""Embeddings: one per (image content, model), computed once by a worker and shared."""

import io
import logging
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from samapp.models import Embedding, EmbeddingStatus, Image
from samapp.realtime.events import broadcast

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)


def embedding_storage_path(*, image_sha256: str, model_key: str) -> str:
    return f"embeddings/{model_key}/{image_sha256[:2]}/{image_sha256}.f16"


def _enqueue(embedding_ids: list[int]) -> None:
    from samapp.tasks import embedding_compute_task

    for embedding_id in embedding_ids:
        embedding_compute_task.delay(embedding_id)


def embeddings_schedule(*, images: list[Image], model_key: str) -> list[Embedding]:
    """Make sure each image has an embedding for `model_key`; queue the missing ones after
    commit. Images sharing content share one embedding, whichever project holds them."""
    queued: list[int] = []
    embeddings: list[Embedding] = []
    for sha256 in dict.fromkeys(image.sha256 for image in images):
        try:
            with transaction.atomic():
                embedding, created = Embedding.objects.get_or_create(
                    image_sha256=sha256, model_key=model_key
                )
        except IntegrityError:  # a concurrent request created it first
            embedding, created = (
                Embedding.objects.get(image_sha256=sha256, model_key=model_key),
                False,
            )
        if created or embedding.status == EmbeddingStatus.FAILED:
            queued.append(embedding.id)
        embeddings.append(embedding)
    if queued:
        transaction.on_commit(lambda: _enqueue(queued))
    return embeddings


def embeddings_recompute(*, images: list[Image]) -> int:
    """Reset and queue the embeddings of `images` for their projects' models."""
    ids: list[int] = []
    for image in images:
        embedding, _ = Embedding.objects.update_or_create(
            image_sha256=image.sha256,
            model_key=image.project.default_model_key,
            defaults={"status": EmbeddingStatus.PENDING, "error": ""},
        )
        ids.append(embedding.id)
    ids = list(dict.fromkeys(ids))
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


@lru_cache(maxsize=2)
def _model(model_key: str) -> "Sam":
    # Loaded once per worker process, then reused for every image.
    from samapp.ml.registry import load_model

    return load_model(
        model_key, device=settings.SAM_DEVICE, checkpoint_dir=settings.SAM_CHECKPOINT_DIR
    )


def _notify(embedding: Embedding, event: str, payload: dict[str, Any]) -> None:
    project_ids = (
        Image.objects.filter(
            sha256=embedding.image_sha256, project__default_model_key=embedding.model_key
        )
        .values_list("project_id", flat=True)
        .distinct()
    )
    for project_id in project_ids:
        broadcast(project_id=project_id, event=event, payload=payload)


def embedding_compute(*, embedding_id: int) -> Embedding | None:
    """Compute and store one embedding; idempotent (a ready one is left alone)."""
    from samapp.ml.embedding import compute_embeddings

    embedding = Embedding.objects.filter(pk=embedding_id).first()
    if embedding is None or embedding.status == EmbeddingStatus.READY:
        return embedding
    image = Image.objects.filter(sha256=embedding.image_sha256).first()
    base_payload = {"sha256": embedding.image_sha256, "model_key": embedding.model_key}
    if image is None:
        embedding.delete()
        return None
    Embedding.objects.filter(pk=embedding.pk).update(
        status=EmbeddingStatus.RUNNING, attempts=embedding.attempts + 1, updated_at=timezone.now()
    )
    started = time.perf_counter()
    try:
        with image.file.open("rb") as handle:
            content = handle.read()
        result = compute_embeddings(_model(embedding.model_key), [io.BytesIO(content)])[0]
    except Exception as exc:
        logger.exception("embedding %s failed", embedding.pk)
        embedding.status = EmbeddingStatus.FAILED
        embedding.error = f"{type(exc).__name__}: {exc}"[:2000]
        embedding.save(update_fields=["status", "error", "updated_at"])
        _notify(embedding, "embedding.failed", {**base_payload, "error": embedding.error})
        return embedding
    path = embedding_storage_path(
        image_sha256=embedding.image_sha256, model_key=embedding.model_key
    )
    blob = result.to_fp16_bytes()
    if default_storage.exists(path):
        default_storage.delete(path)
    default_storage.save(path, ContentFile(blob))
    embedding.storage_path = path
    embedding.dtype = "float16"
    embedding.shape = list(result.shape)
    embedding.input_size = list(result.input_size)
    embedding.original_size = list(result.original_size)
    embedding.byte_size = len(blob)
    embedding.compute_seconds = time.perf_counter() - started
    embedding.status = EmbeddingStatus.READY
    embedding.error = ""
    embedding.save()
    _notify(embedding, "embedding.ready", base_payload)
    return embedding
