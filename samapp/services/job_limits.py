"""Bounds and quotas of the jobs members start (segment everything, proposals, training,
exports).

`PROJECT_SETTINGS` is the one schema of a project's `settings`: each key supplies the default
of a job option, and has that option's type and bounds. The job endpoints build their fields
from it (`samapp.api.fields.job_option_field`), `project_update` checks writes against it, and
the jobs check what they read from it again (settings stored before a bound existed).

Quotas (settings `SAM_MAX_*`): jobs queued or running per project and per user (HTTP 429),
training steps and the points of a proposals run (HTTP 400)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from samapp.choices import JobState
from samapp.errors import ApplicationError, TooManyError
from samapp.models import ExportJob, Project, SegmentJob, TrainingJob
from samapp.services.datasets.common import MAX_TOLERANCE

MAX_POINTS_PER_SIDE = 64  # segment everything / proposals: points_per_side² prompts per image
MAX_MIN_MASK_REGION_AREA = 50_000_000  # pixels: no image is larger (SAM_MAX_IMAGE_PIXELS)


@dataclass(frozen=True)
class Bound:
    kind: type[int] | type[float]
    low: float
    high: float

    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with `value` for the setting `name`, or None."""
        integral = self.kind is int
        if (
            isinstance(value, bool)
            or not isinstance(value, int if integral else int | float)
            or not self.low <= value <= self.high  # NaN and infinities fail too
        ):
            expected = "an integer" if integral else "a number"
            return f"{name}: expected {expected} from {self.low:g} to {self.high:g}, got {value!r}"
        return None


PROJECT_SETTINGS: dict[str, Bound] = {
    "export_polygon_tolerance": Bound(float, 0.0, MAX_TOLERANCE),
    "auto_points_per_side": Bound(int, 1, MAX_POINTS_PER_SIDE),
    "auto_pred_iou_thresh": Bound(float, 0.0, 1.0),
    "auto_stability_score_thresh": Bound(float, 0.0, 1.0),
    "auto_min_mask_region_area": Bound(int, 0, MAX_MIN_MASK_REGION_AREA),
}


def project_settings_bounds() -> dict[str, dict[str, Any]]:
    """Each setting's type ("integer" or "number") and inclusive bounds, for clients."""
    return {
        name: {
            "type": "integer" if bound.kind is int else "number",
            "minimum": bound.kind(bound.low),
            "maximum": bound.kind(bound.high),
        }
        for name, bound in PROJECT_SETTINGS.items()
    }


def project_settings_clean(*, current: dict[str, Any], changes: Any) -> dict[str, Any]:
    """`current` updated with `changes`, every problem reported at once (HTTP 400)."""
    if not isinstance(changes, dict):
        raise ApplicationError("settings must be an object.")
    problems = [
        f"{name}: unknown setting (known: {', '.join(PROJECT_SETTINGS)})"
        for name in sorted(set(changes) - set(PROJECT_SETTINGS))
    ]
    problems += [
        problem
        for name, value in changes.items()
        if name in PROJECT_SETTINGS
        and (problem := PROJECT_SETTINGS[name].problem(name, value)) is not None
    ]
    if problems:
        raise ApplicationError("Invalid project settings.", {"problems": problems})
    return {**current, **changes}


def project_setting(*, project: Project, name: str, default: Any) -> Any:
    """A setting's stored value (`default` when unset), checked against its bound: a value
    stored before the bound existed stops the job with a message instead of running it."""
    value = (project.settings or {}).get(name, default)
    if value is None:  # unset: the caller's fallback (e.g. the model's default) applies
        return None
    problem = PROJECT_SETTINGS[name].problem(name, value)
    if problem is not None:
        raise ApplicationError(f"Project setting {problem}; change the project's settings.")
    return value


def _jobs_active(*, condition: Q) -> int:
    """Jobs of every kind matching `condition` that are queued or running and not stale."""
    stale = timezone.now() - timedelta(seconds=settings.SAM_JOB_STALE_SECONDS)
    return sum(
        model.objects.filter(
            condition, state__in=[JobState.QUEUED, JobState.RUNNING], updated_at__gte=stale
        ).count()
        for model in (SegmentJob, TrainingJob, ExportJob)
    )


def job_quota_check(*, project: Project, user: AbstractBaseUser | None) -> None:
    """Refuse a new job (HTTP 429) while the project or the user has as many jobs queued or
    running as the quota allows."""
    in_project = _jobs_active(condition=Q(project=project))
    if in_project >= settings.SAM_MAX_ACTIVE_JOBS_PER_PROJECT:
        raise TooManyError(
            f"This project has {in_project} jobs queued or running (at most "
            f"{settings.SAM_MAX_ACTIVE_JOBS_PER_PROJECT}); start this one when one has finished."
        )
    if user is None:
        return
    mine = _jobs_active(condition=Q(created_by_id=user.pk))
    if mine >= settings.SAM_MAX_ACTIVE_JOBS_PER_USER:
        raise TooManyError(
            f"You have {mine} jobs queued or running (at most "
            f"{settings.SAM_MAX_ACTIVE_JOBS_PER_USER}); start this one when one has finished."
        )


def training_steps_check(*, steps: int) -> None:
    if steps > settings.SAM_MAX_TRAINING_STEPS:
        raise ApplicationError(
            f"steps: at most {settings.SAM_MAX_TRAINING_STEPS} per training job on this "
            f"server, got {steps}."
        )


def proposal_points_check(*, images: int, points_per_side: int) -> None:
    points = images * points_per_side**2
    if points > settings.SAM_MAX_PROPOSAL_POINTS:
        raise ApplicationError(
            f"{images} images x {points_per_side}² points = {points} prompts; at most "
            f"{settings.SAM_MAX_PROPOSAL_POINTS} per proposals request on this server: send "
            "fewer images or fewer points per side."
        )
