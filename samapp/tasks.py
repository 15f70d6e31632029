"""Celery tasks: thin interfaces over services.

Every task is idempotent (the services claim rows with conditional UPDATEs and leave finished
work alone), acknowledged late and rejected back to the queue when the worker dies, and
retried a bounded number of times with backoff."""

from typing import Any

from celery import shared_task

from samapp.services.datasets.exports import export_job_run, export_jobs_expire
from samapp.services.decoders import decoder_export
from samapp.services.embeddings import TransientEmbeddingError, embeddings_compute_next
from samapp.services.model_downloads import model_download_run
from samapp.services.proposals import proposals_run
from samapp.services.segment import segment_job_run
from samapp.services.training_jobs import training_run

RELIABLE: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(
    bind=True,
    name="samapp.tasks.embedding_compute_task",
    autoretry_for=(TransientEmbeddingError, OSError),
    **RELIABLE,
)
def embedding_compute_task(self: Any, embedding_id: int) -> None:
    # A wake-up: the worker claims the next rows in fair order across projects, which need
    # not include `embedding_id` (one message per queued row: its turn comes with another).
    outcome = embeddings_compute_next()
    if outcome.busy_for is not None and self.request.retries < 3:
        # Other workers hold live claims: look again once the oldest would have gone stale.
        raise self.retry(countdown=outcome.busy_for + 1)


@shared_task(bind=True, name="samapp.tasks.segment_job_run_task", **RELIABLE)
def segment_job_run_task(self: Any, job_id: int) -> None:
    segment_job_run(job_id=job_id)


@shared_task(bind=True, name="samapp.tasks.decoder_export_task", **RELIABLE)
def decoder_export_task(self: Any, model_key: str) -> None:
    decoder_export(model_key=model_key)


@shared_task(name="samapp.tasks.export_run_task", acks_late=True, reject_on_worker_lost=True)
def export_run_task(job_id: int) -> None:
    export_job_run(job_id=job_id)


@shared_task(name="samapp.tasks.exports_expire_task")
def exports_expire_task() -> int:
    return export_jobs_expire()


@shared_task(bind=True, name="samapp.tasks.training_run_task", **RELIABLE)
def training_run_task(self: Any, job_id: int) -> None:
    training_run(job_id=job_id)


@shared_task(bind=True, name="samapp.tasks.proposals_run_task", **RELIABLE)
def proposals_run_task(
    self: Any,
    project_id: int,
    image_ids: list[int],
    user_id: int | None,
    options: dict[str, Any],
) -> None:
    proposals_run(project_id=project_id, image_ids=image_ids, user_id=user_id, options=options)


@shared_task(name="samapp.tasks.model_download_task", acks_late=True, reject_on_worker_lost=True)
def model_download_task(model_key: str) -> None:
    # Not retried automatically: a failure is shown with its reason, and a new start
    # resumes the partial file. A worker lost mid-download re-runs it (acks late).
    model_download_run(model_key=model_key)
