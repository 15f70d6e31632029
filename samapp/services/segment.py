"""Segment everything as a job: the automatic mask generator runs on a worker against the
stored embedding, and its masks become `automatic` annotations in review state `proposed`."""

import io
import logging
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from samapp.choices import AnnotationSource, EmbeddingStatus, JobState, ReviewState
from samapp.ml.model_keys import registry_model_key
from samapp.models import Annotation, Embedding, Image, Project, SegmentJob
from samapp.realtime.contract import JOB_PROGRESS, JobStateName, SegmentProgress
from samapp.realtime.events import broadcast
from samapp.roles import project_writable_check
from samapp.selectors.embeddings import features_load
from samapp.services.annotations import (
    AnnotationDraft,
    annotations_bulk_create,
    annotations_discard,
)
from samapp.services.embeddings import embeddings_compute_batch, embeddings_schedule
from samapp.services.enqueue import enqueue_on_commit
from samapp.services.images import image_bytes_read
from samapp.services.job_limits import PROJECT_SETTINGS, job_quota_check, project_setting
from samapp.services.model_runtime import model_for_key

logger = logging.getLogger(__name__)

OPTION_KEYS = {
    "points_per_side": "auto_points_per_side",
    "pred_iou_thresh": "auto_pred_iou_thresh",
    "stability_score_thresh": "auto_stability_score_thresh",
    "min_mask_region_area": "auto_min_mask_region_area",
}


def segment_job_payload(job: SegmentJob) -> SegmentProgress:
    return {
        "kind": "segment",
        "id": job.id,
        "image": job.image_id,
        "state": cast(JobStateName, job.state),
        "progress": round(job.progress, 3),
        "error": job.error,
        "annotations": job.annotation_count,
        "options": job.options,
        "summary": _summary(job),
    }


def _summary(job: SegmentJob) -> str:
    """One line for the page: how many masks the job kept, and what to try when none."""
    if job.state != JobState.DONE:
        return ""
    if job.annotation_count == 0:
        threshold = job.options.get("pred_iou_thresh")
        now = f" (now {threshold:g})" if isinstance(threshold, int | float) else ""
        return f"0 masks kept — try a lower predicted-IoU threshold{now}."
    plural = "" if job.annotation_count == 1 else "s"
    return f"{job.annotation_count} mask{plural} kept, waiting for review."


def _report(job: SegmentJob, **changes: Any) -> None:
    for name, value in changes.items():
        setattr(job, name, value)
    SegmentJob.objects.filter(pk=job.pk).update(**changes, updated_at=timezone.now())
    broadcast(project_id=job.project_id, event=JOB_PROGRESS, payload=segment_job_payload(job))


def segment_options(*, project: Project, options: dict[str, Any]) -> dict[str, Any]:
    """Generator arguments: the request's options (bounded by the API's schema) over the
    project's auto-segment settings (checked against the same bounds) over the defaults of
    the project's model (`samapp.ml.registry.automatic_defaults`)."""
    from samapp.ml.registry import automatic_defaults

    resolved: dict[str, Any] = automatic_defaults(registry_model_key(project.default_model_key))
    for name, setting in OPTION_KEYS.items():
        value = options.get(name)
        if value is None:
            value = project_setting(project=project, name=setting, default=None)
        if value is not None:
            resolved[name] = PROJECT_SETTINGS[setting].kind(value)
    return resolved


def segment_job_start(
    *, image: Image, user: User | None, options: dict[str, Any] | None = None
) -> SegmentJob:
    project = image.project
    resolved = segment_options(project=project, options=options or {})
    project_writable_check(project)
    job_quota_check(project=project, user=user)
    job = SegmentJob.objects.create(
        project=project,
        image=image,
        model_key=project.default_model_key,
        options=resolved,
        created_by=user,
    )
    embeddings_schedule(images=[image], model_key=job.model_key, priority=5)

    enqueue_on_commit("segment_job_run_task", job.id)
    return job


def _embedding_for(job: SegmentJob) -> Embedding:
    (embedding,) = embeddings_schedule(images=[job.image], model_key=job.model_key)
    if embedding.status != EmbeddingStatus.READY:
        embeddings_compute_batch(embedding_id=embedding.pk, batch_size=1, wait_seconds=0)
        embedding.refresh_from_db()
    if embedding.status != EmbeddingStatus.READY:
        raise RuntimeError(f"The embedding is {embedding.status}: {embedding.error}".strip(": "))
    return embedding


def _generate(*, job: SegmentJob, embedding: Embedding, pixels: Any) -> list[dict[str, Any]]:
    """The family's generator's records for the job's image, on its stored features."""
    from samapp.ml.family_ops import automatic_masks

    model = model_for_key(model_key=job.model_key)
    return automatic_masks(model, pixels, features_load(embedding=embedding), **job.options)


def segment_job_run(*, job_id: int) -> SegmentJob | None:
    """Run one job (idempotent: a finished job is left alone; a re-delivered one replaces the
    proposals its first attempt wrote that are still pending review: a reviewer's decision
    is kept)."""
    from PIL import Image as PILImage

    started = SegmentJob.objects.filter(
        Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING), pk=job_id
    ).update(state=JobState.RUNNING, progress=0.0, updated_at=timezone.now())
    job = SegmentJob.objects.select_related("image", "created_by").filter(pk=job_id).first()
    if not started or job is None:
        return job
    _report(job, state=JobState.RUNNING, progress=0.05)
    image = job.image
    try:
        annotations_discard(
            annotations=Annotation.objects.filter(
                image=image, prompts__segment_job=job.pk, review_state=ReviewState.PROPOSED
            )
        )
        embedding = _embedding_for(job)
        _report(job, progress=0.2)
        pixels = PILImage.open(io.BytesIO(image_bytes_read(image=image)))
        pixels.load()
        # With its filters opened (thresholds 0) SAM's generator also returns the candidates
        # that threshold to no pixel at all; an empty proposal is never worth reviewing.
        records = [
            record
            for record in _generate(job=job, embedding=embedding, pixels=pixels)
            if record["area"] > 0
        ]
        _report(job, progress=0.6)
        annotations_bulk_create(
            drafts=[
                AnnotationDraft(
                    image=image,
                    rle=record["segmentation"],
                    predicted_iou=float(record["predicted_iou"]),
                    prompts={"points": record["point_coords"], "segment_job": job.pk},
                    model_key=job.model_key,
                )
                for record in records
            ],
            author=job.created_by,
            source=AnnotationSource.AUTOMATIC,
            review_state=ReviewState.PROPOSED,
        )
    except Exception as exc:
        logger.exception("segment job %s failed", job.pk)
        _report(job, state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return job
    _report(job, state=JobState.DONE, progress=1.0, annotation_count=len(records))
    return job
