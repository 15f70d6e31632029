"""The one way services start Celery work.

Tasks are looked up by name in the Celery app's registry (`samapp.apps` imports
`samapp.tasks` at start-up), so no service imports `samapp.tasks`, which imports the
services: the dependency runs one way, tasks → services → this module."""

from typing import Any, Literal

from celery import Task, current_app
from django.db import transaction

TaskName = Literal[
    "embedding_compute_task",
    "segment_job_run_task",
    "decoder_export_task",
    "export_run_task",
    "training_run_task",
    "proposals_run_task",
    "model_download_task",
]


def _task(name: TaskName) -> "Task[..., None]":
    task: Task[..., None] = current_app.tasks[f"samapp.tasks.{name}"]
    return task


def enqueue(name: TaskName, *args: Any, priority: int | None = None) -> None:
    """Send task `name` with `args` now; `priority` (0-9) for brokers that honour it. Raises
    the broker's error (kombu.exceptions.KombuError, OSError) when it is unreachable."""
    if priority is None:
        _task(name).delay(*args)
    else:
        _task(name).apply_async(args=args, priority=priority)


def enqueue_on_commit(name: TaskName, *args: Any) -> None:
    """Send task `name` with `args` once the current transaction commits (a worker must find
    the rows it is about to read), or now outside a transaction."""
    transaction.on_commit(lambda: enqueue(name, *args))
