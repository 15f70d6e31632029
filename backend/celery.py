"""Celery application; tasks live in samapp.tasks and stay thin wrappers over services."""

import os

from celery import Celery, bootsteps
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.local")

app = Celery("samstudio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_spool() -> None:
    """Create the spool folders the server-less filesystem broker reads and writes."""
    from django.conf import settings

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        folder = options.get(key)
        if folder:
            os.makedirs(str(folder), exist_ok=True)


class RequeueEmbeddingsOnConnect(bootsteps.StartStopStep):
    """Each time the worker's consumer (re)connects to the broker, wake a worker for the
    embeddings left pending: those whose message could not be published while the broker
    was down, or that a broker restarted without persistence forgot."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: object) -> None:
        import logging

        from django.db import connection

        try:
            from samapp.services.embeddings import embeddings_requeue

            count = embeddings_requeue()
        except Exception:  # never stop the consumer over it; the next (re)connect retries
            logging.getLogger(__name__).warning("re-queueing embeddings failed", exc_info=True)
            return
        finally:
            connection.close()  # the consumer's thread; tasks open their own
        if count:
            logging.getLogger(__name__).info("re-queued %d pending embedding(s)", count)


app.steps["consumer"].add(RequeueEmbeddingsOnConnect)


@worker_init.connect
def preload_ml_stack(**_: object) -> None:
    """Workers run models: import the ML stack (torch, SAM's packages) once in the worker's
    main process, before its pool forks, so that the children share those pages and no first
    task pays the import (~3 s). Web processes never import it (``samapp.ml.registry``)."""
    import samapp.ml.embedding
    import samapp.ml.sam2_embedding  # noqa: F401
