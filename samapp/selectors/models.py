"""Reads about the registry models: whether each checkpoint is on this server, and how its
download is going."""

from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from samapp.choices import ModelDownloadState
from samapp.ml.model_keys import registry_model_key
from samapp.ml.registry import MODELS, checkpoint_path, get_spec
from samapp.models import ModelDownload, Project
from samapp.realtime.contract import RegistryModelPayload

ModelStateName = Literal["absent", "downloading", "verifying", "present", "failed"]

# A download not heard from for this long lost its worker: shown as failed, retryable.
DOWNLOAD_STALE_SECONDS = 120
ACTIVE_STATES = (ModelDownloadState.DOWNLOADING, ModelDownloadState.VERIFYING)
DEMO_MODEL = "sam_tiny"
DEMO_NOTICE = (
    "sam_tiny is the offline demo model: it was trained on generated shapes only and gives "
    "rough blobs on photographs. A manager can download a real model (MobileSAM, 40 MB) "
    "from the Models page."
)


def model_is_present(*, model_key: str) -> bool:
    """Whether the checkpoint of registry model (or version base) `model_key` is here."""
    return checkpoint_path(registry_model_key(model_key), settings.SAM_CHECKPOINT_DIR).is_file()


def download_stale_after() -> timedelta:
    return timedelta(seconds=DOWNLOAD_STALE_SECONDS)


def _download_is_stale(row: ModelDownload) -> bool:
    return row.updated_at < timezone.now() - download_stale_after()


def model_state_payload(
    *, model_key: str, row: ModelDownload | None = None
) -> RegistryModelPayload:
    """One registry model's availability: state absent / downloading / verifying / present /
    failed, with bytes and percent while downloading and the reason when failed."""
    spec = get_spec(model_key)
    if row is None:
        row = ModelDownload.objects.filter(model_key=model_key).first()
    state: ModelStateName = "absent"
    error = ""
    done, total = 0, spec.size_bytes
    if model_is_present(model_key=model_key):
        state = "present"
        done = total or 0
    elif row is not None and row.state in ACTIVE_STATES and not _download_is_stale(row):
        state = "downloading" if row.state == ModelDownloadState.DOWNLOADING else "verifying"
        done, total = row.bytes_done, row.bytes_total or total
    elif row is not None and row.state in ACTIVE_STATES:
        state, error = "failed", "The download stopped (its worker went away); start it again."
    elif row is not None and row.state == ModelDownloadState.FAILED:
        state, error = "failed", row.error
    elif spec.url is None:
        error = "This model ships with the server but its checkpoint is missing."
    return {
        "key": spec.name,
        "title": spec.title,
        "state": state,
        "bytes_done": done,
        "bytes_total": total,
        "percent": round(100 * done / total, 1) if total else None,
        "error": error,
        "downloadable": spec.url is not None,
        "size_bytes": spec.size_bytes,
        "runs_on": spec.runs_on,
        "family": spec.family,
        "licence": spec.licence,
        "source": spec.source,
        "automatic_defaults": dict(spec.automatic),
        "notice": DEMO_NOTICE if spec.name == DEMO_MODEL else "",
    }


def models_list() -> list[RegistryModelPayload]:
    """Every registry model's availability, smallest download first."""
    rows = {row.model_key: row for row in ModelDownload.objects.all()}
    payloads = [model_state_payload(model_key=key, row=rows.get(key)) for key in MODELS]
    return sorted(payloads, key=lambda p: (p["size_bytes"] or 0, p["key"]))


def model_download_active(*, model_key: str) -> ModelDownload | None:
    """The live download row of `model_key`, or None."""
    row = ModelDownload.objects.filter(model_key=model_key, state__in=ACTIVE_STATES).first()
    return None if row is None or _download_is_stale(row) else row


def project_pending_model_key(*, project: Project) -> str | None:
    """The model the project switches to once its download completes, if any."""
    # At most one row per registry model: filtered here (SQLite has no JSON containment).
    for row in ModelDownload.objects.filter(state__in=ACTIVE_STATES).order_by("-updated_at"):
        if project.pk in row.switch_projects and not _download_is_stale(row):
            return row.model_key
    return None


def projects_on_model(*, model_key: str) -> list[int]:
    """Projects running `model_key` or one of its fine-tuned versions."""
    return list(
        Project.objects.filter(
            Q(default_model_key=model_key) | Q(default_model_key__startswith=f"{model_key}-p")
        ).values_list("pk", flat=True)
    )
