"""Model-in-the-loop fine-tuning: training jobs, model versions, activation and rollback.

A manager starts a training job on the project's accepted annotations. A worker fine-tunes
the prompt encoder + mask decoder of the project's current model on the stored image
embeddings (image encoder frozen: the embeddings stay valid and are never recomputed),
evaluates the current model and the new one on the same held-out split, stores the new
weights (decoder + prompt encoder only) and exports the new browser decoder. The result is
a `ModelVersion`, made active only if it beats the current model on the held-out split.

While a version is active, the project's `default_model_key` is the version's key
(`"sam_tiny-p3v2"`, see `samapp.ml.model_keys`): the browser loads that key's decoder
manifest, segment-everything and proposals decode with it, and embeddings are still those
of the base key. Rolling back restores the key that was active before.

The held-out split is a pure function of each image's content hash, so it is the same for
every version and stable as images are added.
"""

import copy
import hashlib
import io
import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from samapp.choices import JobState, ModelVersionState, ReviewState
from samapp.errors import ApplicationError
from samapp.ml.model_keys import embedding_model_key, parse_version_key, version_model_key
from samapp.models import Annotation, Image, ModelVersion, Project, TrainingJob
from samapp.realtime.contract import (
    JOB_PROGRESS,
    MODEL_ACTIVATED,
    JobStateName,
    ModelActivatedPayload,
    TrainingProgress,
)
from samapp.realtime.events import broadcast
from samapp.selectors.embeddings import embedding_load
from samapp.services.decoders import decoder_export, decoder_file_path
from samapp.services.embeddings import embeddings_ready
from samapp.services.enqueue import enqueue_on_commit
from samapp.services.job_limits import job_quota_check, training_steps_check
from samapp.services.model_runtime import model_for_key

if TYPE_CHECKING:
    import numpy as np

    from samapp.ml.embedding import ImageEmbedding

logger = logging.getLogger(__name__)

DEFAULT_HELD_OUT_PERCENT = 20
MIN_TRAIN_OBJECTS = 4
PRIMARY_METRIC = "miou_1"
TRAINING_OPTIONS = {
    "steps",
    "images_per_step",
    "max_objects",
    "lr",
    "train_prompt_encoder",
    "iterations",
    "seed",
}


# ---------------------------------------------------------------- payloads


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


def model_version_payload(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "model_key": version.model_key,
        "base_model_key": version.base_model_key,
        "parent_model_key": version.parent_model_key,
        "state": version.state,
        "metrics": version.metrics,
        "baseline_metrics": version.baseline_metrics,
        "training_job": version.training_job_id,
        "checkpoint_bytes": version.checkpoint_bytes,
        "checkpoint_sha256": version.checkpoint_sha256,
        "decoder_manifest_sha256": {
            name: variant.get("sha256")
            for name, variant in version.decoder_manifest.get("variants", {}).items()
        },
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "created_at": version.created_at.isoformat(),
    }


# ---------------------------------------------------------------- data


def image_is_held_out(*, sha256: str, percent: int = DEFAULT_HELD_OUT_PERCENT) -> bool:
    """Whether an image belongs to the held-out split: a pure function of its content."""
    return int(sha256[:8], 16) % 100 < percent


@dataclass
class _Split:
    embeddings: list["ImageEmbedding"]
    masks: list[list["np.ndarray"]]
    shas: list[str]

    @property
    def objects(self) -> int:
        return sum(len(m) for m in self.masks)


def _project_splits(*, project: Project, model_key: str, percent: int) -> tuple[_Split, _Split]:
    """(train, held-out) of the project's accepted annotations with their embeddings."""
    from samapp.ml.masks import rle_to_mask

    by_image: dict[int, list[Annotation]] = {}
    accepted = Annotation.objects.filter(
        image__project=project, review_state=ReviewState.ACCEPTED
    ).order_by("image_id", "id")
    for annotation in accepted:
        by_image.setdefault(annotation.image_id, []).append(annotation)
    images = list(Image.objects.filter(pk__in=by_image).order_by("sha256"))
    embeddings = embeddings_ready(images=images, model_key=model_key)
    held_out_shas = {
        i.sha256 for i in images if image_is_held_out(sha256=i.sha256, percent=percent)
    }
    if images and not held_out_shas and percent > 0:
        held_out_shas = {images[0].sha256}  # a tiny project: hold out one image anyway
    train, held_out = _Split([], [], []), _Split([], [], [])
    for image in images:
        row = embeddings.get(image.sha256)
        if row is None:
            continue  # failed embedding: logged on the row, skipped here
        stored = embedding_load(embedding=row)
        masks = [rle_to_mask(a.rle).astype(bool) for a in by_image[image.pk]]
        masks = [m for m in masks if m.shape == tuple(row.original_size) and m.any()]
        if not masks:
            continue
        split = held_out if image.sha256 in held_out_shas else train
        split.embeddings.append(stored)
        split.masks.append(masks)
        split.shas.append(image.sha256)
    return train, held_out


def project_held_out_evaluate(
    *, project: Project, model_key: str, held_out_percent: int = DEFAULT_HELD_OUT_PERCENT
) -> dict[str, Any]:
    """Interactive metrics of `model_key` on the project's held-out split (see
    `samapp.ml.finetune.evaluate_embeddings`)."""
    from samapp.ml.finetune import evaluate_embeddings

    _, held_out = _project_splits(project=project, model_key=model_key, percent=held_out_percent)
    if not held_out.embeddings:
        raise ApplicationError("The held-out split has no annotated image yet.")
    return evaluate_embeddings(
        model_for_key(model_key=model_key), held_out.embeddings, held_out.masks
    )


# ---------------------------------------------------------------- weights


def _checkpoint_store(version: ModelVersion, state_dict: dict[str, Any]) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = f"model_versions/p{version.project_id}/v{version.number}/{digest[:16]}.pt"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(data))
    version.checkpoint_path = path
    version.checkpoint_sha256 = digest
    version.checkpoint_bytes = len(data)
    version.save(update_fields=["checkpoint_path", "checkpoint_sha256", "checkpoint_bytes"])


# ---------------------------------------------------------------- training


def _training_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - TRAINING_OPTIONS - {"held_out_percent", "activate"}
    if unknown:
        raise ApplicationError(f"Unknown training options: {', '.join(sorted(unknown))}.")
    percent = int(options.get("held_out_percent", DEFAULT_HELD_OUT_PERCENT))
    if not 1 <= percent <= 50:
        raise ApplicationError("held_out_percent must be between 1 and 50.")
    return {**options, "held_out_percent": percent, "activate": bool(options.get("activate", True))}


def training_start(
    *, project: Project, user: User | None, options: dict[str, Any] | None = None
) -> TrainingJob:
    """Queue a fine-tuning job on the project's accepted annotations; its model version
    (state `training`) gets the next number."""
    from samapp.ml.registry import model_family

    if model_family(project.default_model_key) == "sam2":
        raise ApplicationError(
            "Fine-tuning is not available for SAM 2.1 models yet: switch the project to a SAM"
            " model."
        )
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
    job_quota_check(project=project, user=user)
    base = embedding_model_key(project.default_model_key)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        number = (project.model_versions.aggregate(n=Max("number"))["n"] or 0) + 1
        job = TrainingJob.objects.create(
            project=project, base_model_key=base, options=clean, created_by=user
        )
        version = ModelVersion.objects.create(
            project=project,
            number=number,
            model_key=version_model_key(base, project.pk, number),
            base_model_key=base,
            parent_model_key=project.default_model_key,
            training_job=job,
            created_by=user,
        )
    _decoder_forget(model_key=version.model_key)

    enqueue_on_commit("training_run_task", job.pk)
    return job


def _decoder_forget(*, model_key: str) -> None:
    """Drop a stored decoder manifest left under a reused key (a reset database)."""
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

    names = {f.name for f in fields(FinetuneConfig)}
    return FinetuneConfig(**{k: v for k, v in options.items() if k in names})


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
        _train(job, version, report)
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersionState.FAILED)
        report(state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
    return job


def _train(job: TrainingJob, version: ModelVersion, report: _Reporter) -> None:
    from samapp.ml.finetune import apply_trained_state, evaluate_embeddings, finetune, make_sample

    report(progress=0.02)
    percent = job.options.get("held_out_percent", DEFAULT_HELD_OUT_PERCENT)
    train, held_out = _project_splits(
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
    version.baseline_metrics = evaluate_embeddings(parent, held_out.embeddings, held_out.masks)
    version.held_out_images = held_out.shas
    version.save(update_fields=["baseline_metrics", "held_out_images"])
    report(progress=0.15)

    config = _finetune_config(job.options)
    size = parent.image_encoder.img_size
    samples = [make_sample(e, m, size) for e, m in zip(train.embeddings, train.masks, strict=True)]
    losses: list[float] = []
    every = max(1, config.steps // 50)

    def on_step(step: int, loss: float, iou: float) -> None:
        losses.append(round(loss, 5))
        if step % every == 0 or step == config.steps:
            report(progress=0.15 + 0.7 * step / config.steps, loss_curve=list(losses))

    result = finetune(parent, samples, config, on_step=on_step)
    report(seconds=round(result.seconds, 2))
    _checkpoint_store(version, result.state_dict)
    # Evaluated with the stored (fp16) weights, exactly what the version will run.
    trained = apply_trained_state(copy.deepcopy(parent), result.state_dict).eval()
    version.metrics = evaluate_embeddings(trained, held_out.embeddings, held_out.masks)
    version.metrics["training_seconds"] = round(result.seconds, 2)
    version.save(update_fields=["metrics"])
    report(progress=0.9)
    version.decoder_manifest = decoder_export(model_key=version.model_key)
    version.state = ModelVersionState.READY
    version.save(update_fields=["decoder_manifest", "state"])
    if job.options.get("activate", True):
        if _beats(version.metrics, version.baseline_metrics):
            model_version_activate(version=version)
        else:
            ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersionState.REJECTED)
    report(state=JobState.DONE, progress=1.0)


# ---------------------------------------------------------------- activation


def _beats(metrics: dict[str, Any], baseline: dict[str, Any]) -> bool:
    return float(metrics.get(PRIMARY_METRIC, 0.0)) > float(baseline.get(PRIMARY_METRIC, 1.0))


def _announce(project: Project, version: ModelVersion | None) -> None:
    payload: ModelActivatedPayload = {
        "model_key": project.default_model_key,
        "model_version": version.pk if version else None,
    }
    transaction.on_commit(
        lambda: broadcast(project_id=project.pk, event=MODEL_ACTIVATED, payload=payload)
    )


def model_version_activate(*, version: ModelVersion, force: bool = False) -> ModelVersion:
    """Make `version` the project's model if it beats the current one on the held-out
    split (or `force`). The comparison is the one made at training time when the current
    model is still the version's parent; otherwise both are evaluated again now."""
    if version.state in (ModelVersionState.TRAINING, ModelVersionState.FAILED):
        raise ApplicationError(f"Version {version.number} is {version.state}: nothing to activate.")
    project = Project.objects.get(pk=version.project_id)  # the current key, not a stale copy
    current = project.default_model_key
    if current == version.model_key:
        return version
    if not force:
        if current == version.parent_model_key:
            ours, theirs = version.metrics, version.baseline_metrics
        else:
            percent = DEFAULT_HELD_OUT_PERCENT
            if version.training_job is not None:
                percent = version.training_job.options.get("held_out_percent", percent)
            ours = project_held_out_evaluate(
                project=project, model_key=version.model_key, held_out_percent=percent
            )
            theirs = project_held_out_evaluate(
                project=project, model_key=current, held_out_percent=percent
            )
        if not _beats(ours, theirs):
            raise ApplicationError(
                f"Version {version.number} does not beat {current} on the held-out split "
                f"({PRIMARY_METRIC} {ours.get(PRIMARY_METRIC)} vs {theirs.get(PRIMARY_METRIC)})."
            )
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        ModelVersion.objects.filter(project=project, state=ModelVersionState.ACTIVE).update(
            state=ModelVersionState.READY
        )
        version.state = ModelVersionState.ACTIVE
        version.previous_model_key = project.default_model_key
        version.activated_at = timezone.now()
        version.save(update_fields=["state", "previous_model_key", "activated_at", "updated_at"])
        project.default_model_key = version.model_key
        project.save(update_fields=["default_model_key", "updated_at"])
        _announce(project, version)
    version.project = project
    return version


def model_version_rollback(*, project: Project) -> Project:
    """Deactivate the project's active version and return to the model active before it
    (another version, or the base model)."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        active = ModelVersion.objects.filter(
            project=project, model_key=project.default_model_key
        ).first()
        if active is None:
            raise ApplicationError("The project runs its base model: nothing to roll back.")
        target_key = active.previous_model_key or active.base_model_key
        active.state = ModelVersionState.ROLLED_BACK
        active.save(update_fields=["state", "updated_at"])
        target = None
        if parse_version_key(target_key) is not None:
            target = ModelVersion.objects.filter(project=project, model_key=target_key).first()
            if target is None:
                target_key = active.base_model_key
            else:
                target.state = ModelVersionState.ACTIVE
                target.save(update_fields=["state", "updated_at"])
        project.default_model_key = target_key
        project.save(update_fields=["default_model_key", "updated_at"])
        _announce(project, target)
    return project
