"""Export jobs: create one, run it (Celery), report progress over the websocket."""

import logging
import re
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from samapp.choices import ExportFormat, JobState
from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import ExportJob, Project
from samapp.realtime.contract import JOB_PROGRESS, ExportProgress, JobStateName
from samapp.realtime.events import broadcast
from samapp.selectors.datasets import dataset_count, dataset_iter, dataset_labels
from samapp.services.datasets.common import (
    ExportOptions,
    ExportRun,
    ExportWriter,
    ZipSink,
    export_options_clean,
)
from samapp.services.datasets.export_coco import coco_write
from samapp.services.datasets.export_cvat import cvat_write
from samapp.services.datasets.export_label_studio import label_studio_write
from samapp.services.datasets.export_png import png_write
from samapp.services.datasets.export_voc import voc_write
from samapp.services.datasets.export_yolo import yolo_write
from samapp.services.enqueue import enqueue_on_commit
from samapp.services.job_limits import job_quota_check, project_setting

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5


WRITERS: dict[str, ExportWriter] = {
    ExportFormat.COCO: coco_write,
    ExportFormat.YOLO: yolo_write,
    ExportFormat.PNG: png_write,
    ExportFormat.VOC: voc_write,
    ExportFormat.CVAT: cvat_write,
    ExportFormat.LABEL_STUDIO: label_studio_write,
}


def export_default_tolerance(project: Project) -> float:
    """The polygon tolerance an export uses when its options leave it out."""
    return float(project_setting(project=project, name="export_polygon_tolerance", default=1.0))


def export_job_create(
    *,
    project: Project,
    created_by: User | None,
    format: str,
    options: Any = None,
) -> ExportJob:
    """Check the options, store the job, and queue it once the row is committed."""
    cleaned = export_options_clean(
        format=format, options=options, default_tolerance=export_default_tolerance(project)
    )
    job_quota_check(project=project, user=created_by)
    job = ExportJob.objects.create(
        project=project, created_by=created_by, format=format, options=cleaned.as_dict()
    )
    _job_event(job)

    enqueue_on_commit("export_run_task", job.id)
    return job


def export_job_payload(job: ExportJob) -> ExportProgress:
    state = cast(JobStateName, job.state)
    return {"kind": "export", "id": job.id, "state": state, "progress": job.progress}


def _job_event(job: ExportJob) -> None:
    broadcast(project_id=job.project_id, event=JOB_PROGRESS, payload=export_job_payload(job))


def _set(job: ExportJob, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    ExportJob.objects.filter(pk=job.pk).update(updated_at=timezone.now(), **fields)
    _job_event(job)


def _archive_name(job: ExportJob) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", job.project.name.lower()).strip("-")[:40] or "project"
    return f"{slug}-{job.format}-{job.id}.zip"


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Write the job's archive into storage. Safe to run again: a finished job is left
    alone, an interrupted one starts over."""
    job = ExportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.state == JobState.DONE:
        return job
    _set(job, state=JobState.RUNNING, progress=0.0, error="")
    try:
        options = export_options_clean(
            format=job.format,
            options=job.options,
            default_tolerance=export_default_tolerance(job.project),
        )
        _write_archive(job, options)
    except ApplicationError as exc:
        _set(job, state=JobState.FAILED, error=exc.message)
    except Exception as exc:
        logger.exception("export job %s failed", job.pk)
        _set(job, state=JobState.FAILED, error=f"Export failed: {type(exc).__name__}")
    return job


def _write_archive(job: ExportJob, options: ExportOptions) -> None:
    project, filters = job.project, options.filters
    total = dataset_count(project=project, filters=filters)
    done, last = 0, time.monotonic()

    def progress() -> None:
        nonlocal done, last
        done += 1
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS:
            last = now
            _set(job, progress=round(0.99 * done / max(total, 1), 4))

    with tempfile.TemporaryFile(prefix="samstudio-export-") as handle:
        with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            WRITERS[job.format](
                ExportRun(
                    sink=ZipSink(archive),
                    project=project,
                    labels=dataset_labels(project=project, filters=filters),
                    items=dataset_iter(project=project, filters=filters),
                    options=options,
                    progress=progress,
                )
            )
        handle.seek(0)
        old = job.result_file.name
        job.result_file.save(_archive_name(job), File(handle), save=False)
    if old and old != job.result_file.name:
        job.result_file.storage.delete(old)
    name = str(job.result_file.name)
    if not ExportJob.objects.filter(pk=job.pk).update(result_file=name):
        job.result_file.storage.delete(name)  # the job was deleted while it ran
        return
    _set(job, state=JobState.DONE, progress=1.0)


def export_job_delete(*, job: ExportJob, user: AbstractBaseUser, may_manage: bool) -> None:
    """Delete an export and its archive: its creator may, and the project's managers."""
    if job.created_by_id != user.pk and not may_manage:
        raise PermissionDeniedError("Only its creator or a project manager can delete an export.")
    _jobs_delete(ExportJob.objects.filter(pk=job.pk))


def export_expiry(job: ExportJob) -> datetime:
    """When the export (and its archive) is deleted."""
    return job.created_at + timedelta(hours=settings.SAM_EXPORT_TTL_HOURS)


def export_jobs_expire(*, project: Project | None = None) -> int:
    """Delete the exports older than `SAM_EXPORT_TTL_HOURS` (of `project`, else of every
    project) with their archives; a job still running (moved within the TTL) is left for a
    later sweep. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.SAM_EXPORT_TTL_HOURS)
    expired = ExportJob.objects.filter(created_at__lt=cutoff).filter(
        Q(state__in=[JobState.DONE, JobState.FAILED]) | Q(updated_at__lt=cutoff)
    )
    if project is not None:
        expired = expired.filter(project=project)
    return _jobs_delete(expired)


def _jobs_delete(jobs: QuerySet[ExportJob]) -> int:
    names = [name for name in jobs.values_list("result_file", flat=True) if name]

    def delete_files() -> None:
        for name in names:
            default_storage.delete(name)

    with transaction.atomic():
        count, _ = jobs.delete()
        transaction.on_commit(delete_files)
    return count
