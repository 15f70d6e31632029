"""Export jobs: create one, run it (Celery), report progress over the websocket."""

import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
from typing import Any, cast

from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from samapp.errors import ApplicationError
from samapp.models import ExportFormat, ExportJob, JobState, Project
from samapp.realtime.contract import JOB_PROGRESS, ExportProgress, JobStateName
from samapp.realtime.events import broadcast
from samapp.selectors.datasets import dataset_count, dataset_iter, dataset_labels
from samapp.services.datasets.common import (
    ExportOptions,
    ExportRun,
    ZipSink,
    export_options_clean,
)
from samapp.services.datasets.export_coco import coco_write
from samapp.services.datasets.export_cvat import cvat_write
from samapp.services.datasets.export_label_studio import label_studio_write
from samapp.services.datasets.export_png import png_write
from samapp.services.datasets.export_voc import voc_write
from samapp.services.datasets.export_yolo import yolo_write

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5


WRITERS: dict[str, Callable[[ExportRun], None]] = {
    ExportFormat.COCO: coco_write,
    ExportFormat.YOLO: yolo_write,
    ExportFormat.PNG: png_write,
    ExportFormat.VOC: voc_write,
    ExportFormat.CVAT: cvat_write,
    ExportFormat.LABEL_STUDIO: label_studio_write,
}


def _default_tolerance(project: Project) -> float:
    value = (project.settings or {}).get("export_polygon_tolerance", 1.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1.0


def export_job_create(
    *,
    project: Project,
    created_by: User | None,
    format: str,
    options: Any = None,
) -> ExportJob:
    """Check the options, store the job, and queue it once the row is committed."""
    cleaned = export_options_clean(
        format=format, options=options, default_tolerance=_default_tolerance(project)
    )
    job = ExportJob.objects.create(
        project=project, created_by=created_by, format=format, options=cleaned.as_dict()
    )
    _job_event(job)

    def enqueue() -> None:
        from samapp.tasks import export_run_task

        export_run_task.delay(job.id)

    transaction.on_commit(enqueue)
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
            default_tolerance=_default_tolerance(job.project),
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
    ExportJob.objects.filter(pk=job.pk).update(result_file=job.result_file.name)
    _set(job, state=JobState.DONE, progress=1.0)


def export_job_delete(*, job: ExportJob) -> None:
    name, storage = job.result_file.name, job.result_file.storage
    with transaction.atomic():
        job.delete()
        if name:
            transaction.on_commit(lambda: storage.delete(name))
