"""The options members give the jobs they start: each option's bounds (those the API
enforces, from `PROJECT_SETTINGS`) and the value a job uses when the request leaves it out
(the project's setting, else the model's default), so a page offers exactly what is allowed."""

from typing import Literal, TypedDict

from samapp.models import Project
from samapp.services.datasets.exports import export_default_tolerance
from samapp.services.job_limits import PROJECT_SETTINGS
from samapp.services.segment import OPTION_KEYS, segment_options


class JobOption(TypedDict):
    kind: Literal["int", "float"]
    min: float
    max: float
    default: float | None


def _option(setting: str, default: float | None) -> JobOption:
    bound = PROJECT_SETTINGS[setting]
    return {
        "kind": "int" if bound.kind is int else "float",
        "min": bound.low,
        "max": bound.high,
        "default": default,
    }


def job_options(*, project: Project) -> dict[str, dict[str, JobOption]]:
    """Segment everything's thresholds and the export's polygon tolerance, by request key."""
    segment = segment_options(project=project, options={})
    return {
        "segment": {
            name: _option(setting, segment.get(name)) for name, setting in OPTION_KEYS.items()
        },
        "export": {
            "tolerance": _option("export_polygon_tolerance", export_default_tolerance(project))
        },
    }
