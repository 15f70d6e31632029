"""Embeddings: one per (image content, model), computed once by a worker; shared by every
project holding that content when `SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS` is on, else one per
(project, content, model), so that an upload never reveals what another tenant holds.

The database is the queue's source of truth: a Celery message only wakes a worker, which
then *claims* up to `SAM_EMBEDDING_BATCH_SIZE` claimable rows with a conditional UPDATE
(pending → running) and encodes them in one batched forward. Two workers can never both
claim a row, a message finding nothing claimable is a no-op, and a RUNNING claim older than
`SAM_EMBEDDING_CLAIM_TIMEOUT` (a crashed worker) is claimed again — so a killed worker leads
to a retry, never to a stuck image.

Which rows a woken worker claims is decided by the database, not by the broker's FIFO order
(`embedding_claims.fair_candidates`): the highest priority first (an image an annotator has
just opened), then the project served least recently (`Project.embeddings_served_at`), then that
project's oldest row. A project that queues a thousand images therefore gets one turn in
every round, like each other project with pending work.

Blobs go through Django's `default_storage` (local disk or S3-compatible object storage):
nothing assumes the web process and the workers share a filesystem."""

import hashlib
import io
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from samapp.choices import EmbeddingStatus
from samapp.ml.model_keys import embedding_model_key
from samapp.models import Embedding, Image
from samapp.realtime.contract import (
    EMBEDDING_FAILED,
    EMBEDDING_READY,
    EmbeddingFailedPayload,
    EmbeddingReadyPayload,
    P,
    ServerEvent,
)
from samapp.realtime.events import broadcast
from samapp.selectors.embeddings import embedding_scope, int8_path
from samapp.services.embedding_claims import busy_for, claim, claim_fair, claimable, gather, release
from samapp.services.enqueue import enqueue
from samapp.services.images import image_bytes_read
from samapp.services.model_runtime import model_for_key

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


def _enqueue(embedding_ids: list[int], *, priority: int = 0) -> None:
    """Wake a worker for each id. Runs after commit: a broker that is down must not fail the
    request whose rows are already saved, so the rows stay PENDING and `embeddings_requeue`
    (run each time a worker connects to the broker) wakes a worker for them later."""
    from kombu.exceptions import KombuError

    for embedding_id in embedding_ids:
        # Celery priority helps brokers that honour it; the claim order (priority column)
        # is what makes an opened image jump ahead whatever the broker does.
        try:
            enqueue("embedding_compute_task", embedding_id, priority=min(priority, 9))
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
        Embedding.objects.filter(claimable(timezone.now()))
        .order_by("-priority", "id")
        .values_list("pk", "priority")
    )
    for pk, priority in rows:
        _enqueue([pk], priority=priority)
    return len(rows)


def _identity(*, sha256: str, model_key: str, project_id: int) -> dict[str, Any]:
    """The lookup of the embedding that serves a project's image of `sha256`."""
    # A fine-tuned version shares its base model's (frozen) image encoder and embeddings.
    return {
        "image_sha256": sha256,
        "model_key": embedding_model_key(model_key),
        "project_id": embedding_scope(project_id=project_id),
    }


def _get_or_create(*, sha256: str, model_key: str, project_id: int) -> tuple[Embedding, bool]:
    lookup = _identity(sha256=sha256, model_key=model_key, project_id=project_id)
    try:
        with transaction.atomic():
            return Embedding.objects.get_or_create(**lookup, defaults={"queued_for_id": project_id})
    except IntegrityError:  # a concurrent request created it first
        return Embedding.objects.get(**lookup), False


def embeddings_schedule(
    *, images: list[Image], model_key: str, priority: int = PRIORITY_BULK
) -> list[Embedding]:
    """Make sure each image has an embedding for `model_key`; queue the missing ones after
    commit. Images sharing content share one embedding (within their project, or across
    projects when sharing is on); one row per distinct (content, project) is returned."""
    queued: dict[int, None] = {}
    embeddings: dict[int, Embedding] = {}
    for sha256, project_id in dict.fromkeys((image.sha256, image.project_id) for image in images):
        embedding, created = _get_or_create(
            sha256=sha256, model_key=model_key, project_id=project_id
        )
        if embedding.pk in embeddings:  # the same content in two projects, shared
            continue
        if created or embedding.status == EmbeddingStatus.FAILED:
            if not created:
                Embedding.objects.filter(pk=embedding.pk).update(
                    status=EmbeddingStatus.PENDING, error="", attempts=0
                )
            queued[embedding.pk] = None
        if priority > embedding.priority and embedding.status != EmbeddingStatus.READY:
            Embedding.objects.filter(pk=embedding.pk).update(priority=priority)
            queued[embedding.pk] = None  # wake a worker: it claims by priority
        embeddings[embedding.pk] = embedding
    if queued:
        transaction.on_commit(lambda: _enqueue(list(queued), priority=priority))
    return list(embeddings.values())


def embeddings_recompute(*, images: list[Image]) -> int:
    """Reset and queue the embeddings of `images` for their projects' models."""
    ids: list[int] = []
    for image in images:
        embedding, _ = Embedding.objects.update_or_create(
            **_identity(
                sha256=image.sha256,
                model_key=image.project.default_model_key,
                project_id=image.project_id,
            ),
            defaults={"status": EmbeddingStatus.PENDING, "error": "", "attempts": 0},
            create_defaults={
                "status": EmbeddingStatus.PENDING,
                "queued_for_id": image.project_id,
            },
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


def _holders(embedding: Embedding) -> Any:
    """The images an embedding serves: its project's, or every project's when shared."""
    images = Image.objects.filter(sha256=embedding.image_sha256)
    if embedding.project_id is not None:
        images = images.filter(project_id=embedding.project_id)
    return images


def _notify(*, embedding: Embedding, event: ServerEvent[P], payload: P) -> None:
    model_key = embedding.model_key
    project_ids = (
        _holders(embedding)
        .filter(
            Q(project__default_model_key=model_key)
            | Q(project__default_model_key__startswith=f"{model_key}-p")  # its versions
        )
        .values_list("project_id", flat=True)
        .distinct()
    )
    for project_id in project_ids:
        broadcast(project_id=project_id, event=event, payload=payload)


def _fail(embedding: Embedding, error: str) -> None:
    Embedding.objects.filter(pk=embedding.pk).update(
        status=EmbeddingStatus.FAILED,
        error=error[:2000],
        claimed_at=None,
        updated_at=timezone.now(),
    )
    _notify(
        embedding=embedding,
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

    image = _holders(embedding).order_by("id").first()
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
        embedding=embedding,
        event=EMBEDDING_READY,
        payload=EmbeddingReadyPayload(sha256=embedding.image_sha256, model_key=embedding.model_key),
    )


def _encode(model: "Sam", images: list[Any]) -> tuple[list[Any], float]:
    """SAM's embeddings, or SAM 2's three feature maps (stored packed, see ml/sam2_embedding)."""
    from samapp.ml.embedding import compute_embeddings
    from samapp.ml.sam2_embedding import compute_sam2_features
    from samapp.ml.sam2_models import is_sam2

    encode = compute_sam2_features if is_sam2(model) else compute_embeddings
    started = time.perf_counter()
    results = encode(model, images, batch_size=max(1, len(images)))
    return results, time.perf_counter() - started


def _batch_options(batch_size: int | None, wait_seconds: float | None) -> tuple[int, float]:
    size = batch_size or settings.SAM_EMBEDDING_BATCH_SIZE
    wait = settings.SAM_EMBEDDING_BATCH_WAIT if wait_seconds is None else wait_seconds
    return size, wait


def embeddings_compute_next(
    *, batch_size: int | None = None, wait_seconds: float | None = None
) -> BatchOutcome:
    """What a woken worker does: claim and compute the next batch in fair order (module
    docstring), whichever row's message woke it. When nothing is claimable, `busy_for` says
    when the oldest live claim goes stale: the claimer may have died, and the message that
    woke this worker may be the one meant for its row."""
    size, wait = _batch_options(batch_size, wait_seconds)
    first = claim_fair(model_key=None, claimed=[], limit=1)
    if not first:
        return BatchOutcome(busy_for=busy_for(Embedding.objects.all()))
    model_key = Embedding.objects.get(pk=first[0]).model_key
    claimed = gather(first=first, model_key=model_key, batch_size=size, wait_seconds=wait)
    return _compute_claimed(claimed)


def embeddings_compute_batch(
    *, embedding_id: int, batch_size: int | None = None, wait_seconds: float | None = None
) -> BatchOutcome:
    """Compute the embedding `embedding_id` now (a job that needs it, in its own worker) and
    up to `batch_size - 1` other claimable ones of the same model, in fair order, in one
    forward pass. Idempotent: ready or failed rows are left alone."""
    outcome = BatchOutcome()
    target = Embedding.objects.filter(pk=embedding_id).first()
    if target is None or target.status in (EmbeddingStatus.READY, EmbeddingStatus.FAILED):
        return outcome
    size, wait = _batch_options(batch_size, wait_seconds)
    first = claim([target.pk])
    if not first:
        outcome.busy_for = busy_for(Embedding.objects.filter(pk=target.pk))
        return outcome
    claimed = gather(first=first, model_key=target.model_key, batch_size=size, wait_seconds=wait)
    return _compute_claimed(claimed)


def embeddings_ready(*, images: list[Image], model_key: str) -> dict[str, Embedding]:
    """Ready embeddings of `images` for `model_key` (its base model's), by image sha256;
    missing ones are computed here, in the calling worker. Failed ones are left out."""
    rows = embeddings_schedule(images=images, model_key=model_key)
    for row in rows:
        if row.status != EmbeddingStatus.READY:
            embeddings_compute_batch(embedding_id=row.pk, wait_seconds=0)
    ready = Embedding.objects.filter(
        pk__in=[row.pk for row in rows], status=EmbeddingStatus.READY
    ).order_by("id")
    return {row.image_sha256: row for row in ready}


def _compute_claimed(claimed: list[int]) -> BatchOutcome:
    outcome = BatchOutcome()
    delay = settings.SAM_EMBEDDING_TEST_DELAY  # test hook: widen the crash window
    if delay and Embedding.objects.filter(pk=claimed[0], attempts=1).exists():
        time.sleep(delay)
    rows = list(Embedding.objects.filter(pk__in=claimed).order_by("-priority", "id"))
    try:
        return _compute_rows(rows, outcome)
    except TransientEmbeddingError:
        release([row.pk for row in rows if row.pk not in outcome.ready + outcome.failed])
        raise


def _load_rows(rows: list[Embedding], outcome: BatchOutcome) -> list[tuple[Embedding, Any]]:
    """(row, pixels) of the rows whose image reads; the others fail (recorded in `outcome`)."""
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
    return loaded


def _compute_rows(rows: list[Embedding], outcome: BatchOutcome) -> BatchOutcome:
    loaded = _load_rows(rows, outcome)
    if not loaded:
        return outcome
    model_key = loaded[0][0].model_key
    try:
        model = model_for_key(model_key=model_key)
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
