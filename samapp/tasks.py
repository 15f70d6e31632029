"""Celery tasks: thin interfaces over services."""

from celery import shared_task

from samapp.services.embeddings import embedding_compute


@shared_task(
    name="samapp.tasks.embedding_compute_task",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def embedding_compute_task(embedding_id: int) -> None:
    embedding_compute(embedding_id=embedding_id)
