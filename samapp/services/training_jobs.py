"""Fine-tuning jobs: the data engine's model-in-the-loop step.

A manager starts a training job on the project's accepted annotations. A worker evaluates
the project's current model on the held-out split, fine-tunes it on the training split,
evaluates the result on the same split, stores its weights as a `ModelVersion` and exports
its browser decoder; the version becomes active if it beats the current model.

`encoder_mode` chooses what is trained (`samapp.ml.encoder_adapt`):

- "frozen": the prompt encoder + mask decoder on the stored image embeddings; the
  embeddings stay valid and are never recomputed.
- "lora" / "blocks": the image encoder too (low-rank adapters on its attention, or its last
  blocks), from the project's images. The version has its own encoder (its key ends in
  `e`), so before it becomes active the project's images are embedded again under its key,
  in this job, with progress, through the embedding scheduling services (other workers
  take their share of the queued rows).

"frozen" is the default: on the generated "novel" style neither encoder mode has beaten it
yet at the same budget (`bench/encoder_finetune.py`, docs/models.md).
"""

import copy
import io
import logging
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from samapp.choices import EmbeddingStatus, JobState, ModelVersionState, ReviewState
from samapp.errors import ApplicationError
from samapp.ml.family_ops import FinetuneOps, finetune_ops
from samapp.ml.model_keys import (
    ENCODER_MODES,
    embedding_model_key,
    has_own_encoder,
    is_version_key,
    registry_model_key,
    version_model_key,
)
from samapp.ml.registry import model_family
from samapp.models import Annotation, Image, ModelVersion, Project, TrainingJob
from samapp.realtime.contract import JOB_PROGRESS, JobStateName, TrainingProgress
from samapp.realtime.events import broadcast
from samapp.roles import project_writable_check
from samapp.services.embeddings import embeddings_compute_batch, embeddings_schedule
from samapp.services.enqueue import enqueue_on_commit
from samapp.services.images import image_bytes_read
from samapp.services.job_limits import job_quota_check, training_steps_check
from samapp.services.model_runtime import model_for_key, model_version_state
from samapp.services.model_versions import (
    DEFAULT_HELD_OUT_PERCENT,
    Split,
    model_version_activate,
    project_splits,
    version_beats,
    version_checkpoint_store,
)

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

MIN_TRAIN_OBJECTS = 4
TRAINING_OPTIONS = {
    "steps",
    "images_per_step",
    "max_objects",
    "lr",
    "train_prompt_encoder",
    "iterations",
    "seed",
    "encoder_mode",
    "encoder_blocks",
    "encoder_rank",
    "copy_paste",
}
ENCODER_MODE_CHOICES = ENCODER_MODES
MAX_COPY_PASTE = 8  # objects of another image pasted into each (encoder modes)
# The job's progress: splits and baseline to 0.15, training to 0.85, evaluation and the
# decoder export to 0.9, the re-embedding of a version with its own encoder to 0.99.
TRAIN_START, TRAIN_END, EMBED_START, EMBED_END = 0.15, 0.85, 0.9, 0.99


def training_job_payload(job: TrainingJob) -> TrainingProgress:
    version = ModelVersion.objects.filter(training_job=job).only("pk", "model_key").first()
    return {
        "kind": "training",
        "id": job.id,
        "state": cast(JobStateName, job.state),
        "progress": round(job.progress, 3),
        "error": job.error,
        "base_model_key": job.base_model_key,
        "options": job.options,
        "train_images": job.train_images,
        "train_objects": job.train_objects,
        "held_out_images": job.held_out_images,
        "held_out_objects": job.held_out_objects,
        "seconds": job.seconds,
        "loss_curve": job.loss_curve,
        "model_version": version.pk if version else None,
        "model_key": version.model_key if version else None,
    }


def _training_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - TRAINING_OPTIONS - {"held_out_percent", "activate"}
    if unknown:
        raise ApplicationError(f"Unknown training options: {', '.join(sorted(unknown))}.")
    percent = int(options.get("held_out_percent", DEFAULT_HELD_OUT_PERCENT))
    if not 1 <= percent <= 50:
        raise ApplicationError("held_out_percent must be between 1 and 50.")
    mode = options.get("encoder_mode", "frozen")
    if mode not in ENCODER_MODE_CHOICES:
        raise ApplicationError(f"encoder_mode must be one of {', '.join(ENCODER_MODE_CHOICES)}.")
    copy_paste = options.get("copy_paste", 0)
    if isinstance(copy_paste, bool) or not isinstance(copy_paste, int):
        raise ApplicationError("copy_paste must be an integer.")
    if not 0 <= copy_paste <= MAX_COPY_PASTE:
        raise ApplicationError(f"copy_paste must be between 0 and {MAX_COPY_PASTE}.")
    return {
        **options,
        "held_out_percent": percent,
        "encoder_mode": mode,
        "activate": bool(options.get("activate", True)),
    }


def _encoder_mode_check(*, mode: str, model_key: str) -> None:
    """The image encoder adapts on SAM models only: checked when a job is asked for, and again
    when it runs (a job queued by an earlier release may not have been)."""
    if mode != "frozen" and model_family(model_key) != "sam":
        raise ApplicationError(
            f"encoder_mode {mode!r} adapts SAM's image encoder; this project's model "
            f"({model_key}) is not a SAM model: use 'frozen'."
        )


def training_start(
    *, project: Project, user: User | None, options: dict[str, Any] | None = None
) -> TrainingJob:
    """Queue a fine-tuning job on the project's accepted annotations; its model version
    (state `training`) gets the next number."""

    clean = _training_options(options or {})
    if "steps" in clean:
        training_steps_check(steps=int(clean["steps"]))
    if TrainingJob.objects.filter(
        project=project, state__in=[JobState.QUEUED, JobState.RUNNING]
    ).exists():
        raise ApplicationError("A training job is already running for this project.")
    accepted = Annotation.objects.filter(image__project=project, review_state=ReviewState.ACCEPTED)
    if accepted.count() < MIN_TRAIN_OBJECTS:
        raise ApplicationError(
            f"Fine-tuning needs at least {MIN_TRAIN_OBJECTS} accepted annotations."
        )
    project_writable_check(project)
    job_quota_check(project=project, user=user)
    parent = project.default_model_key
    _encoder_mode_check(mode=clean["encoder_mode"], model_key=parent)
    base = registry_model_key(parent)
    own_encoder = has_own_encoder(parent) or clean["encoder_mode"] in ("lora", "blocks")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        number = (project.model_versions.aggregate(n=Max("number"))["n"] or 0) + 1
        job = TrainingJob.objects.create(
            project=project, base_model_key=base, options=clean, created_by=user
        )
        version = ModelVersion.objects.create(
            project=project,
            number=number,
            model_key=version_model_key(base, project.pk, number, own_encoder),
            base_model_key=base,
            parent_model_key=parent,
            training_job=job,
            created_by=user,
        )
    _decoder_forget(model_key=version.model_key)

    enqueue_on_commit("training_run_task", job.pk)
    return job


def _decoder_forget(*, model_key: str) -> None:
    """Drop a stored decoder manifest left under a reused key (a reset database)."""
    from samapp.services.decoders import decoder_file_path

    path = decoder_file_path(model_key=model_key, filename="manifest.json")
    if default_storage.exists(path):
        default_storage.delete(path)


class _Reporter:
    """Job progress in the database and over the websocket, at most ~50 updates a run."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        self.sent = 0  # loss points already sent over the websocket

    def __call__(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.job, name, value)
        TrainingJob.objects.filter(pk=self.job.pk).update(**changes, updated_at=timezone.now())
        payload = training_job_payload(self.job)
        # The websocket carries only the new points: `loss_from` is the first one's index.
        payload["loss_from"] = self.sent
        payload["loss_curve"] = payload["loss_curve"][self.sent :]
        self.sent = len(self.job.loss_curve)
        broadcast(project_id=self.job.project_id, event=JOB_PROGRESS, payload=payload)


def _finetune_config(options: dict[str, Any]) -> Any:
    from samapp.ml.finetune import FinetuneConfig

    return FinetuneConfig.from_options(options)


def training_run(*, job_id: int) -> TrainingJob | None:
    """Run a training job (idempotent: a finished job is left alone; a re-delivered one
    trains again from the same seed)."""
    started = TrainingJob.objects.filter(
        Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING), pk=job_id
    ).update(state=JobState.RUNNING, progress=0.0, updated_at=timezone.now())
    job = TrainingJob.objects.select_related("project").filter(pk=job_id).first()
    if not started or job is None:
        return job
    version = ModelVersion.objects.get(training_job=job)
    report = _Reporter(job)
    try:
        _encoder_mode_check(
            mode=job.options.get("encoder_mode", "frozen"), model_key=version.parent_model_key
        )
        _train(job, version, report)
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersionState.FAILED)
        report(state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
    return job


def _pixels(project: Project, split: Split) -> list["np.ndarray"]:
    """(H, W, 3) uint8 RGB of the split's images, in the split's order."""
    from PIL import Image as PILImage

    from samapp.ml.embedding import to_rgb_array

    images: dict[str, Image] = {}
    for image in Image.objects.filter(project=project, sha256__in=split.shas).order_by("id"):
        images.setdefault(image.sha256, image)
    return [
        to_rgb_array(PILImage.open(io.BytesIO(image_bytes_read(image=images[sha]))))
        for sha in split.shas
    ]


def _samples(
    project: Project, parent: Any, train: Split, ops: FinetuneOps, *, trains_encoder: bool
) -> list[Any]:
    """Training samples of the train split: from the images' pixels when the encoder trains,
    else from their stored features (the model family's own sample format)."""
    from samapp.ml.finetune import make_image_sample

    if trains_encoder:
        pixels = _pixels(project, train)
        return [make_image_sample(parent, p, m) for p, m in zip(pixels, train.masks, strict=True)]
    return [ops.make_sample(e, m) for e, m in zip(train.embeddings, train.masks, strict=True)]


def _train(job: TrainingJob, version: ModelVersion, report: _Reporter) -> None:
    from samapp.ml.embedding import compute_embeddings
    from samapp.ml.finetune import combine_states
    from samapp.services.decoders import decoder_export

    report(progress=0.02)
    percent = job.options.get("held_out_percent", DEFAULT_HELD_OUT_PERCENT)
    train, held_out = project_splits(
        project=job.project, model_key=version.parent_model_key, percent=percent
    )
    if train.objects < 1 or not held_out.embeddings:
        raise ApplicationError("Not enough accepted annotations in both splits to fine-tune.")
    report(
        progress=0.1,
        train_images=len(train.embeddings),
        train_objects=train.objects,
        held_out_images=len(held_out.embeddings),
        held_out_objects=held_out.objects,
    )
    parent = model_for_key(model_key=version.parent_model_key)
    ops = finetune_ops(parent)
    version.baseline_metrics = ops.evaluate(parent, held_out.embeddings, held_out.masks)
    version.held_out_images = held_out.shas
    version.save(update_fields=["baseline_metrics", "held_out_images"])
    config = _finetune_config(job.options)
    samples = _samples(job.project, parent, train, ops, trains_encoder=config.trains_encoder)
    report(progress=TRAIN_START)
    losses: list[float] = []
    every = max(1, config.recipe.steps // 50)

    def on_step(step: int, loss: float, iou: float) -> None:
        losses.append(round(loss, 5))
        if step % every == 0 or step == config.recipe.steps:
            progress = TRAIN_START + (TRAIN_END - TRAIN_START) * step / config.recipe.steps
            report(progress=progress, loss_curve=list(losses))

    result = ops.finetune(parent, samples, config, on_step=on_step)
    report(seconds=round(result.seconds, 2))
    state = result.state_dict
    if is_version_key(version.parent_model_key):  # stored relative to the registry model
        state = combine_states(model_version_state(model_key=version.parent_model_key), state)
    version_checkpoint_store(version, state)
    # Evaluated with the stored (fp16) weights, exactly what the version will run.
    trained = ops.apply_trained_state(copy.deepcopy(parent), result.state_dict).eval()
    held_out_embeddings = held_out.embeddings
    if config.trains_encoder:
        held_out_embeddings = compute_embeddings(trained, _pixels(job.project, held_out))
    version.metrics = ops.evaluate(trained, held_out_embeddings, held_out.masks)
    version.metrics["training_seconds"] = round(result.seconds, 2)
    version.metrics["encoder_mode"] = config.encoder.mode
    version.save(update_fields=["metrics"])
    report(progress=EMBED_START)
    version.decoder_manifest = decoder_export(model_key=version.model_key)
    version.state = ModelVersionState.READY
    version.save(update_fields=["decoder_manifest", "state"])
    if job.options.get("activate", True):
        if version_beats(version.metrics, version.baseline_metrics):
            if embedding_model_key(version.model_key) == version.model_key:
                _embed_project(version, report)
            model_version_activate(version=version)
        else:
            ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersionState.REJECTED)
    report(state=JobState.DONE, progress=1.0)


def _embed_project(version: ModelVersion, report: _Reporter) -> None:
    """Embed the project's images under a version's own key before it becomes active: queued
    for every worker, and computed here in batches (rows another worker holds are left to
    it), reporting progress from `EMBED_START` to `EMBED_END`."""
    images = list(Image.objects.filter(project_id=version.project_id).order_by("id"))
    rows = embeddings_schedule(images=images, model_key=version.model_key)
    pending = [row.pk for row in rows if row.status != EmbeddingStatus.READY]
    batch = settings.SAM_EMBEDDING_BATCH_SIZE
    for done, pk in enumerate(pending, start=1):
        embeddings_compute_batch(embedding_id=pk, batch_size=batch, wait_seconds=0)
        if done % max(1, len(pending) // 20) == 0 or done == len(pending):
            report(progress=EMBED_START + (EMBED_END - EMBED_START) * done / len(pending))
