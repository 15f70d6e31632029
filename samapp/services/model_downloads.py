"""Registry models on this server: checkpoint downloads as Celery jobs, the model of new
projects, switching a project's model, and what happens when a model becomes present.

A project only ever runs a model whose checkpoint is here. Switching to a model that is
being downloaded is queued on its `ModelDownload` row and applied when the download
completes (open workspaces get `model.pending`, and keep the current model meanwhile); a
later switch replaces a queued one; switching to an absent model is refused (HTTP 409). When
a model becomes present its browser decoder is exported first, then the waiting projects
switch, the embeddings of every project running it are scheduled, and open workspaces get
`model.activated`. A failed download ends the wait: `model.pending` with no model.

Progress goes to every socket (the `models` group) as `model.download` events.
"""

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from samapp.choices import ModelDownloadState, Role
from samapp.errors import ApplicationError, ConflictError, PermissionDeniedError
from samapp.ml.registry import get_spec
from samapp.models import Image, Membership, ModelDownload, Project
from samapp.realtime.contract import (
    MODEL_ACTIVATED,
    MODEL_DOWNLOAD,
    MODEL_PENDING,
    ModelActivatedPayload,
    ModelPendingPayload,
)
from samapp.realtime.events import broadcast, broadcast_models
from samapp.selectors.models import (
    ACTIVE_STATES,
    DEMO_MODEL,
    download_stale_after,
    model_download_active,
    model_is_present,
    model_state_payload,
    projects_on_model,
)
from samapp.services.decoders import decoder_export, decoder_export_request
from samapp.services.embeddings import embeddings_schedule
from samapp.services.enqueue import enqueue as enqueue_task

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5


class ModelNotPresentError(ConflictError):
    """The model's checkpoint is not on this server (HTTP 409)."""


def _announce_state(model_key: str) -> None:
    broadcast_models(event=MODEL_DOWNLOAD, payload=model_state_payload(model_key=model_key))


def _announce_pending(*, project_id: int, model_key: str | None, failure: str = "") -> None:
    """Tell the project's sockets, after commit, which model its switch waits for (or, with
    `failure`, that the download it waited for failed)."""

    def send() -> None:
        current = Project.objects.filter(pk=project_id).values_list("default_model_key", flat=True)
        payload = ModelPendingPayload(
            model_key=model_key, current_model_key=current.first() or "", failure=failure
        )
        broadcast(project_id=project_id, event=MODEL_PENDING, payload=payload)

    transaction.on_commit(send)


def _switch_unqueue(*, project_id: int, keep: str | None = None) -> bool:
    """Take `project_id` off the waiting list of every download but `keep`'s; True when it
    was waiting for one (a newer switch replaces a queued one)."""
    removed = False
    with transaction.atomic():
        for row in ModelDownload.objects.select_for_update().exclude(model_key=keep or ""):
            if project_id in row.switch_projects:
                # An UPDATE that leaves `updated_at` alone: that is the download's heartbeat.
                ModelDownload.objects.filter(pk=row.pk).update(
                    switch_projects=[pk for pk in row.switch_projects if pk != project_id]
                )
                removed = True
    return removed


def model_download_allowed(*, user: AbstractBaseUser) -> bool:
    """Staff, and owners or managers of any project, may download checkpoints."""
    if getattr(user, "is_staff", False):
        return True
    return Membership.objects.filter(user_id=user.pk, role__in=[Role.OWNER, Role.MANAGER]).exists()


def model_download_start(
    *, model_key: str, user: AbstractBaseUser | None, enqueue: bool = True
) -> ModelDownload:
    """Start downloading `model_key` as a Celery job (`enqueue` False: the caller runs
    `model_download_run` itself); a download already running is returned as it is (one per
    model at a time). `user` None is the server itself (start-up)."""
    spec = get_spec(model_key)
    if user is not None and not model_download_allowed(user=user):
        raise PermissionDeniedError("Only managers and owners can download models.")
    if spec.url is None:
        raise ApplicationError(f"{model_key} ships with the server: there is nothing to download.")
    if model_is_present(model_key=model_key):
        raise ApplicationError(f"{model_key} is already on this server.")
    try:
        with transaction.atomic():
            ModelDownload.objects.get_or_create(
                model_key=model_key, defaults={"state": ModelDownloadState.FAILED}
            )
    except IntegrityError:  # a concurrent request created it first
        pass
    now = timezone.now()
    # One conditional UPDATE claims the row: of two requests racing, one starts the job.
    claimed = (
        ModelDownload.objects.filter(model_key=model_key)
        .filter(~Q(state__in=ACTIVE_STATES) | Q(updated_at__lt=now - download_stale_after()))
        .update(
            state=ModelDownloadState.DOWNLOADING,
            bytes_done=0,
            bytes_total=spec.size_bytes,
            error="",
            started_by_id=user.pk if user is not None else None,
            updated_at=now,
        )
    )
    row = ModelDownload.objects.get(model_key=model_key)
    if claimed:

        def announce_and_enqueue() -> None:
            _announce_state(model_key)
            if enqueue:
                enqueue_task("model_download_task", model_key)

        transaction.on_commit(announce_and_enqueue)
    return row


class _Progress:
    """Download progress into the row and over the websocket, at most twice a second."""

    def __init__(self, model_key: str) -> None:
        self.model_key = model_key
        self.sent = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if stage == "downloading" and now - self.sent < PROGRESS_EVERY_SECONDS:
            return
        self.sent = now
        ModelDownload.objects.filter(model_key=self.model_key).update(
            state=stage, bytes_done=done, bytes_total=total, updated_at=timezone.now()
        )
        _announce_state(self.model_key)


def _failure_message(error: Exception) -> str:
    from samapp.ml.checkpoints import ChecksumMismatchError, OfflineError

    if isinstance(error, OfflineError):
        return (
            "The download host cannot be reached (no network?). Start the download again "
            "later: it resumes where it stopped."
        )
    if isinstance(error, ChecksumMismatchError):
        return "The downloaded file was corrupt (wrong size or sha256) and was deleted; retry."
    if isinstance(error, OSError):
        return f"The checkpoint could not be written on the server: {error.strerror or error}."
    return str(error)


def model_download_run(*, model_key: str, progress_file: Any = None) -> str:
    """Download `model_key` (resuming a partial file, checking its sha256) and, once present,
    make it ready (see `model_present_activate`). Returns the final state. A row that is not
    downloading (finished, failed, never started) is left alone."""
    from samapp.ml.checkpoints import CheckpointDownloadError, download_model

    if not ModelDownload.objects.filter(model_key=model_key, state__in=ACTIVE_STATES).exists():
        return model_state_payload(model_key=model_key)["state"]
    try:
        download_model(
            model_key,
            checkpoint_dir=settings.SAM_CHECKPOINT_DIR,
            progress=progress_file is not None,
            progress_file=progress_file,
            base_url=settings.SAM_DOWNLOAD_BASE_URL or None,
            connect_timeout=settings.SAM_DOWNLOAD_CONNECT_TIMEOUT,
            on_progress=_Progress(model_key),
        )
    except (CheckpointDownloadError, OSError) as exc:
        logger.warning("download of %s failed: %s", model_key, exc)
        failure = _failure_message(exc)
        with transaction.atomic():
            row = ModelDownload.objects.select_for_update().get(model_key=model_key)
            waiting = list(row.switch_projects)
            ModelDownload.objects.filter(pk=row.pk).update(
                state=ModelDownloadState.FAILED,
                error=failure,
                switch_projects=[],
                updated_at=timezone.now(),
            )
        _announce_state(model_key)
        for project_id in waiting:  # they keep their model
            _announce_pending(project_id=project_id, model_key=None, failure=failure)
        return ModelDownloadState.FAILED
    ModelDownload.objects.filter(model_key=model_key).update(
        state=ModelDownloadState.PRESENT, error="", updated_at=timezone.now()
    )
    _announce_state(model_key)
    model_present_activate(model_key=model_key)
    return ModelDownloadState.PRESENT


def model_present_activate(*, model_key: str) -> list[int]:
    """`model_key` is present: export its browser decoder, switch the projects waiting for
    it, schedule the embeddings of every project running it, and tell open workspaces.
    Returns the ids of the projects running it."""
    decoder_export(model_key=model_key)  # before any workspace is told to load it
    row = ModelDownload.objects.filter(model_key=model_key).first()
    waiting = list(row.switch_projects) if row is not None else []
    if row is not None:
        ModelDownload.objects.filter(pk=row.pk).update(switch_projects=[])
    for project in Project.objects.filter(pk__in=waiting):
        project_model_apply(project=project, model_key=model_key)
    project_ids = projects_on_model(model_key=model_key)
    for project_id in project_ids:
        _embeddings_schedule_project(project_id=project_id, model_key=model_key)
    return project_ids


def _embeddings_schedule_project(*, project_id: int, model_key: str) -> None:
    images = list(Image.objects.filter(project_id=project_id).only("pk", "sha256"))
    if images:
        embeddings_schedule(images=images, model_key=model_key)


def project_model_apply(*, project: Project, model_key: str) -> Project:
    """Switch `project` to the present model `model_key` now: its images' embeddings are
    scheduled, the decoder export requested, and the project's sockets told."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        _switch_unqueue(project_id=project.pk)
        if project.default_model_key != model_key:
            project.default_model_key = model_key
            project.save(update_fields=["default_model_key", "updated_at"])
        _embeddings_schedule_project(project_id=project.pk, model_key=model_key)
        payload = ModelActivatedPayload(model_key=model_key, model_version=None)
        transaction.on_commit(
            lambda: broadcast(project_id=project.pk, event=MODEL_ACTIVATED, payload=payload)
        )
    decoder_export_request(model_key=model_key)
    return project


def project_model_switch(*, project: Project, model_key: str) -> bool:
    """Ask for `project` to run registry model `model_key`: applied now when present (True),
    queued until its download completes when one is running (False); either replaces a
    switch queued before. Asking for the model in use only drops a queued switch. Raises
    `ModelNotPresentError` for a model that is neither: the project keeps its model and any
    queued switch."""
    if model_key == project.default_model_key:
        if _switch_unqueue(project_id=project.pk):
            _announce_pending(project_id=project.pk, model_key=None)
        return True
    if model_is_present(model_key=model_key):
        project_model_apply(project=project, model_key=model_key)
        return True
    with transaction.atomic():
        row = model_download_active(model_key=model_key)
        if row is None:
            raise ModelNotPresentError(
                f"{get_spec(model_key).title} is not on this server yet: a manager can "
                f"download it from the Models page. The project keeps "
                f"{project.default_model_key} until then."
            )
        row = ModelDownload.objects.select_for_update().get(pk=row.pk)
        _switch_unqueue(project_id=project.pk, keep=model_key)
        if project.pk not in row.switch_projects:
            row.switch_projects = [*row.switch_projects, project.pk]
            row.save(update_fields=["switch_projects", "updated_at"])
        _announce_pending(project_id=project.pk, model_key=model_key)
    return False


def model_default_for_new_project() -> tuple[str, str | None]:
    """(model to create a project with, model to switch it to once downloaded or None).

    `SAM_DEFAULT_MODEL` names a registry model, or is "auto": the first present model of
    `SAM_AUTO_MODELS`. A configured model that is not present yet leaves new projects on the
    offline demo model, switching when a running download of it completes."""
    configured = settings.SAM_DEFAULT_MODEL
    wanted = list(settings.SAM_AUTO_MODELS) if configured == "auto" else [configured]
    for key in wanted:
        if model_is_present(model_key=key):
            return key, None
    for key in wanted:
        if model_download_active(model_key=key) is not None:
            return DEMO_MODEL, key
    return DEMO_MODEL, None
