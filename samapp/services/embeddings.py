"""Embeddings: one per (image content, model), computed once by a worker and shared.

The database is the queue's source of truth: a Celery message only wakes a worker, which
then *claims* up to `SAM_EMBEDDING_BATCH_SIZE` pending rows (highest priority first) with a
conditional UPDATE (pending → running) and encodes them in one batched forward. Two workers
can never both claim a row, a message for a row another worker already finished is a no-op,
and a RUNNING claim older than `SAM_EMBEDDING_CLAIM_TIMEOUT` (a crashed worker) is claimed
again — so a killed worker leads to a retry, never to a stuck image.

Blobs go through Django's `default_storage` (local disk or S3-compatible object storage):
nothing assumes the web process and the workers share a filesystem.
"""

import hashlib
import io
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from samapp.ml.model_keys import embedding_model_key, is_version_key
from samapp.models import Embedding, EmbeddingStatus, Image
from samapp.realtime.contract import (
    EMBEDDING_FAILED,
    EMBEDDING_READY,
    EmbeddingFailedPayload,
    EmbeddingReadyPayload,
    P,
    ServerEvent,
)
from samapp.realtime.events import broadcast
from samapp.services.images import image_bytes_read

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)

PRIORITY_OPENED = 10  # an annotator is looking at it now
PRIORITY_NEXT = 5  # the next images in an annotator's queue
PRIORITY_BULK = 0  # uploads, recomputes


class TransientEmbeddingError(Exception):
    """Storage or broker trouble: release the claims and let the task retry later."""


def embedding_storage_path(*, image_sha256: str, model_key: str, digest: str, fmt: str) -> str:
    suffix = {"fp16": "f16", "int8": "i8"}[fmt]
    return f"embeddings/{model_key}/{image_sha256[:2]}/{image_sha256}.{digest}.{suffix}"


def int8_path(fp16_path: str) -> str:
    return fp16_path.removesuffix(".f16") + ".i8"


def _enqueue(embedding_ids: list[int], *, priority: int = 0) -> None:
    """Wake a worker for each id. Runs after commit: a broker that is down must not fail the
    request whose rows are already saved, so the rows stay PENDING and `embeddings_requeue`
    (run each time a worker connects to the broker) wakes a worker for them later."""
    from kombu.exceptions import KombuError

    from samapp.tasks import embedding_compute_task

    for embedding_id in embedding_ids:
        # Celery priority helps brokers that honour it; the claim order (priority column)
        # is what makes an opened image jump ahead whatever the broker does.
        try:
            embedding_compute_task.apply_async(args=[embedding_id], priority=min(priority, 9))
        except (KombuError, OSError) as exc:
            logger.warning(
                "broker unreachable (%s): %d embedding(s) stay pending until a worker "
                "reconnects and re-queues them",
                exc,
                len(embedding_ids),
            )
            return


def embeddings_requeue() -> int:
    """Wake a worker for every claimable embedding (pending, or claimed by a worker that
    died): what a publish that failed while the broker was down, or a broker restarted
    without its queues, left behind. Extra wake-ups are no-ops (rows are claimed)."""
    rows = list(
        Embedding.objects.filter(_claimable(timezone.now()))
        .order_by("-priority", "id")
        .values_list("pk", "priority")
    )
    for pk, priority in rows:
        _enqueue([pk], priority=priority)
    return len(rows)


def _get_or_create(*, sha256: str, model_key: str) -> tuple[Embedding, bool]:
    # A fine-tuned version shares its base model's (frozen) image encoder and embeddings.
    model_key = embedding_model_key(model_key)
    try:
        with transaction.atomic():
            return Embedding.objects.get_or_create(image_sha256=sha256, model_key=model_key)
    except IntegrityError:  # a concurrent request created it first
        return Embedding.objects.get(image_sha256=sha256, model_key=model_key), False


def embeddings_schedule(
    *, images: list[Image], model_key: str, priority: int = PRIORITY_BULK
) -> list[Embedding]:
    """Make sure each image has an embedding for `model_key`; queue the missing ones after
    commit. Images sharing content share one embedding, whichever project holds them."""
    queued: list[int] = []
    embeddings: list[Embedding] = []
    for sha256 in dict.fromkeys(image.sha256 for image in images):
        embedding, created = _get_or_create(sha256=sha256, model_key=model_key)
        if created or embedding.status == EmbeddingStatus.FAILED:
            if not created:
                Embedding.objects.filter(pk=embedding.pk).update(
                    status=EmbeddingStatus.PENDING, error="", attempts=0
                )
            queued.append(embedding.id)
        if priority > embedding.priority and embedding.status != EmbeddingStatus.READY:
            Embedding.objects.filter(pk=embedding.pk).update(priority=priority)
            if embedding.id not in queued:
                queued.append(embedding.id)  # wake a worker: it claims by priority
        embeddings.append(embedding)
    if queued:
        transaction.on_commit(lambda: _enqueue(queued, priority=priority))
    return embeddings


def embeddings_recompute(*, images: list[Image]) -> int:
    """Reset and queue the embeddings of `images` for their projects' models."""
    ids: list[int] = []
    for image in images:
        embedding, _ = Embedding.objects.update_or_create(
            image_sha256=image.sha256,
            model_key=embedding_model_key(image.project.default_model_key),
            defaults={"status": EmbeddingStatus.PENDING, "error": "", "attempts": 0},
        )
        ids.append(embedding.id)
    ids = list(dict.fromkeys(ids))
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def embedding_request(
    *, image: Image, user: AbstractBaseUser | None, preencode_next: int | None = None
) -> Embedding:
    """An annotator opened `image`: its embedding jumps the queue, and the next images of
    their queue (assigned to them, else unassigned, after this one) are encoded ahead."""
    model_key = image.project.default_model_key
    (embedding,) = embeddings_schedule(
        images=[image], model_key=model_key, priority=PRIORITY_OPENED
    )
    count = settings.SAM_PREENCODE_NEXT if preencode_next is None else preencode_next
    if count > 0:
        upcoming = Image.objects.filter(project_id=image.project_id, id__gt=image.id)
        mine = upcoming.filter(assignee_id=user.pk) if user is not None else upcoming.none()
        nexts = list(mine.order_by("id")[:count]) or list(
            upcoming.filter(assignee__isnull=True).order_by("id")[:count]
        )
        if nexts:
            embeddings_schedule(images=nexts, model_key=model_key, priority=PRIORITY_NEXT)
    embedding.refresh_from_db()
    return embedding


@lru_cache(maxsize=2)
def _model(model_key: str) -> "Sam":
    # Loaded once per worker process, then reused for every batch. The encoder's attention
    # runs through SDPA (same embeddings within float rounding; bench/embedding_throughput.py).
    from samapp.ml.fast_encoder import use_sdpa_attention
    from samapp.ml.registry import CheckpointNotFoundError, load_model

    try:
        return use_sdpa_attention(
            load_model(
                model_key, device=settings.SAM_DEVICE, checkpoint_dir=settings.SAM_CHECKPOINT_DIR
            )
        )
    except CheckpointNotFoundError:
        if not settings.SAM_RANDOM_INIT_FALLBACK:
            raise
        logger.warning("no checkpoint for %s: using random weights (fallback on)", model_key)
        return use_sdpa_attention(
            load_model(model_key, device=settings.SAM_DEVICE, random_init=True)
        )


def model_for_key(*, model_key: str) -> "Sam":
    if is_version_key(model_key):  # a project's fine-tuned decoder on the base encoder
        from samapp.services.model_versions import model_version_model

        return model_version_model(model_key=model_key)
    return _model(model_key)


def _notify(*, image_sha256: str, model_key: str, event: ServerEvent[P], payload: P) -> None:
    project_ids = (
        Image.objects.filter(sha256=image_sha256)
        .filter(
            Q(project__default_model_key=model_key)
            | Q(project__default_model_key__startswith=f"{model_key}-p")  # its versions
        )
        .values_list("project_id", flat=True)
        .distinct()
    )
    for project_id in project_ids:
        broadcast(project_id=project_id, event=event, payload=payload)


def _claimable(now: Any) -> Q:
    stale = now - timedelta(seconds=settings.SAM_EMBEDDING_CLAIM_TIMEOUT)
    return Q(status=EmbeddingStatus.PENDING) | Q(
        Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True), status=EmbeddingStatus.RUNNING
    )


def _claim(ids: list[int]) -> list[int]:
    """Claim each id with one conditional UPDATE; returns those this worker now holds."""
    claimed = []
    for pk in ids:
        now = timezone.now()
        if Embedding.objects.filter(_claimable(now), pk=pk).update(
            status=EmbeddingStatus.RUNNING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        ):
            claimed.append(pk)
    return claimed


def _release(ids: list[int]) -> None:
    Embedding.objects.filter(pk__in=ids, status=EmbeddingStatus.RUNNING).update(
        status=EmbeddingStatus.PENDING, claimed_at=None
    )


def _fail(embedding: Embedding, error: str) -> None:
    Embedding.objects.filter(pk=embedding.pk).update(
        status=EmbeddingStatus.FAILED,
        error=error[:2000],
        claimed_at=None,
        updated_at=timezone.now(),
    )
    _notify(
        image_sha256=embedding.image_sha256,
        model_key=embedding.model_key,
        event=EMBEDDING_FAILED,
        payload=EmbeddingFailedPayload(
            sha256=embedding.image_sha256, model_key=embedding.model_key, error=error
        ),
    )


@dataclass
class BatchOutcome:
    ready: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    busy_for: float | None = None  # another worker holds a live claim on the requested row


def _load_pixels(embedding: Embedding) -> Any:
    """The PIL image for an embedding, read through the default storage."""
    from PIL import Image as PILImage

    image = Image.objects.filter(sha256=embedding.image_sha256).order_by("id").first()
    if image is None:
        raise LookupError("no image holds this content any more")
    try:
        content = image_bytes_read(image=image)
    except FileNotFoundError as exc:
        raise LookupError(f"image file missing from storage: {image.file.name}") from exc
    except OSError as exc:
        raise TransientEmbeddingError(str(exc)) from exc
    pixels = PILImage.open(io.BytesIO(content))
    pixels.load()
    return pixels


def _store(embedding: Embedding, result: Any, compute_seconds: float) -> None:
    fp16 = result.to_bytes("fp16")
    int8 = result.to_bytes("int8")
    digest = hashlib.sha256(fp16).hexdigest()[:16]
    path = embedding_storage_path(
        image_sha256=embedding.image_sha256,
        model_key=embedding.model_key,
        digest=digest,
        fmt="fp16",
    )
    for name, blob in ((path, fp16), (int8_path(path), int8)):
        if default_storage.exists(name):  # same content (same digest): keep it
            continue
        saved = default_storage.save(name, ContentFile(blob))
        if saved != name:  # a concurrent writer won the name; its bytes are the same
            default_storage.delete(saved)
    channels, height, width = (int(n) for n in result.embedding.shape)
    Embedding.objects.filter(pk=embedding.pk).update(
        status=EmbeddingStatus.READY,
        storage_path=path,
        dtype="float16",
        shape=[1, channels, height, width],
        input_size=list(result.input_size),
        original_size=list(result.original_size),
        byte_size=len(fp16),
        compute_seconds=compute_seconds,
        error="",
        claimed_at=None,
        updated_at=timezone.now(),
    )
    _notify(
        image_sha256=embedding.image_sha256,
        model_key=embedding.model_key,
        event=EMBEDDING_READY,
        payload=EmbeddingReadyPayload(sha256=embedding.image_sha256, model_key=embedding.model_key),
    )


def _encode(model: "Sam", images: list[Any]) -> tuple[list[Any], float]:
    from samapp.ml.embedding import compute_embeddings

    started = time.perf_counter()
    results = compute_embeddings(model, images, batch_size=max(1, len(images)))
    return results, time.perf_counter() - started


def _gather(*, target: Embedding, batch_size: int, wait_seconds: float) -> list[int]:
    claimed = _claim([target.pk])
    if not claimed:
        return []
    deadline = time.monotonic() + wait_seconds
    while len(claimed) < batch_size:
        candidates = list(
            Embedding.objects.filter(_claimable(timezone.now()), model_key=target.model_key)
            .exclude(pk__in=claimed)
            .order_by("-priority", "id")
            .values_list("pk", flat=True)[: batch_size - len(claimed)]
        )
        claimed += _claim(candidates)
        if len(claimed) >= batch_size or time.monotonic() >= deadline:
            break
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return claimed


def embeddings_compute_batch(
    *, embedding_id: int, batch_size: int | None = None, wait_seconds: float | None = None
) -> BatchOutcome:
    """Compute the embedding `embedding_id` and up to `batch_size - 1` other pending ones of
    the same model in one forward pass. Idempotent: ready or failed rows are left alone."""
    outcome = BatchOutcome()
    target = Embedding.objects.filter(pk=embedding_id).first()
    if target is None or target.status in (EmbeddingStatus.READY, EmbeddingStatus.FAILED):
        return outcome
    size = batch_size or settings.SAM_EMBEDDING_BATCH_SIZE
    wait = settings.SAM_EMBEDDING_BATCH_WAIT if wait_seconds is None else wait_seconds
    claimed = _gather(target=target, batch_size=size, wait_seconds=wait)
    if not claimed:
        target.refresh_from_db()
        if target.status == EmbeddingStatus.RUNNING and target.claimed_at is not None:
            age = (timezone.now() - target.claimed_at).total_seconds()
            outcome.busy_for = max(0.0, settings.SAM_EMBEDDING_CLAIM_TIMEOUT - age)
        return outcome
    delay = settings.SAM_EMBEDDING_TEST_DELAY  # test hook: widen the crash window
    if delay and Embedding.objects.filter(pk=target.pk, attempts=1).exists():
        time.sleep(delay)
    rows = list(Embedding.objects.filter(pk__in=claimed).order_by("-priority", "id"))
    try:
        return _compute_rows(rows, outcome)
    except TransientEmbeddingError:
        _release([row.pk for row in rows if row.pk not in outcome.ready + outcome.failed])
        raise


def _compute_rows(rows: list[Embedding], outcome: BatchOutcome) -> BatchOutcome:
    loaded: list[tuple[Embedding, Any]] = []
    for row in rows:
        if row.attempts > settings.SAM_EMBEDDING_MAX_ATTEMPTS:
            _fail(row, f"Gave up after {row.attempts - 1} attempts (worker lost each time).")
            outcome.failed.append(row.pk)
            continue
        try:
            loaded.append((row, _load_pixels(row)))
        except TransientEmbeddingError:
            raise
        except LookupError as exc:
            _fail(row, str(exc))
            outcome.failed.append(row.pk)
        except Exception as exc:
            _fail(row, f"Unreadable image: {type(exc).__name__}: {exc}")
            outcome.failed.append(row.pk)
    if not loaded:
        return outcome
    model_key = loaded[0][0].model_key
    try:
        model = _model(model_key)
    except Exception as exc:
        for row, _ in loaded:
            _fail(row, f"Model {model_key} unavailable: {exc}")
            outcome.failed.append(row.pk)
        return outcome
    try:
        results, seconds = _encode(model, [pixels for _, pixels in loaded])
        per_image = seconds / len(loaded)
        done = list(zip([row for row, _ in loaded], results, strict=True))
    except Exception:
        # One bad image must not sink the batch: encode them one by one.
        logger.warning("batch of %d failed; encoding one by one", len(loaded), exc_info=True)
        done = []
        for row, pixels in loaded:
            try:
                (result,), per_image = _encode(model, [pixels])
            except Exception as exc:
                logger.exception("embedding %s failed", row.pk)
                _fail(row, f"{type(exc).__name__}: {exc}")
                outcome.failed.append(row.pk)
                continue
            _store(row, result, per_image)
            outcome.ready.append(row.pk)
        return outcome
    for row, result in done:
        _store(row, result, per_image)
        outcome.ready.append(row.pk)
    return outcome


def embedding_compute(*, embedding_id: int) -> Embedding | None:
    """Compute one embedding (batching with whatever else is pending); returns its row."""
    embeddings_compute_batch(embedding_id=embedding_id)
    return Embedding.objects.filter(pk=embedding_id).first()


def embedding_read(*, embedding: Embedding, fmt: str = "fp16") -> bytes:
    """The stored bytes of a READY embedding in `fmt` (fp16 or int8)."""
    path = embedding.storage_path if fmt == "fp16" else int8_path(embedding.storage_path)
    with default_storage.open(path, "rb") as handle:
        return handle.read()
