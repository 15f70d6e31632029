"""Annotation analytics per annotator and label.

Definitions (over the project's annotations that people made, i.e. source manual, click or
box, and that were not rejected):

- objects: how many such annotations the annotator made with that label.
- seconds per object: the time since the annotator's previous annotation (any label, any
  image of the project), attributed to the later one; a gap longer than `idle_seconds`
  is a break, and that annotation gets no time. Mean over the annotations that got a time.
- objects per hour: 3600 / seconds per object (time-weighted over the same annotations).
- clicks per object: points in the annotation's prompts, plus one for a box.
- accepted unchanged: share of the objects whose mask is the model's candidate as shown,
  accepted without edits (the workspace sends a predicted IoU only for an unedited
  candidate; any brush/eraser/polygon edit clears it) and not rejected in review.
"""

from dataclasses import asdict, dataclass
from typing import Any

from samapp.choices import AnnotationSource, ReviewState
from samapp.models import Annotation, Project

IDLE_SECONDS = 300.0
HUMAN_SOURCES = (AnnotationSource.MANUAL, AnnotationSource.CLICK, AnnotationSource.BOX)
MODEL_SOURCES = (AnnotationSource.CLICK, AnnotationSource.BOX)


@dataclass
class AnalyticsRow:
    annotator_id: int
    annotator: str
    label_id: int | None
    label: str
    objects: int = 0
    timed_objects: int = 0
    active_seconds: float = 0.0
    clicks: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        timed = self.timed_objects
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("clicks", "unchanged")},
            "active_seconds": round(self.active_seconds, 1),
            "objects_per_hour": round(3600 * timed / self.active_seconds, 2)
            if self.active_seconds > 0
            else None,
            "seconds_per_object": round(self.active_seconds / timed, 2) if timed else None,
            "clicks_per_object": round(self.clicks / self.objects, 2) if self.objects else None,
            "accepted_unchanged_share": round(self.unchanged / self.objects, 3)
            if self.objects
            else None,
        }


def _clicks(prompts: Any) -> int:
    if not isinstance(prompts, dict):
        return 0
    points = prompts.get("points")
    count = len(points) if isinstance(points, list) else 0
    return count + (1 if prompts.get("box") else 0)


def annotation_analytics(
    *, project: Project, idle_seconds: float = IDLE_SECONDS
) -> list[dict[str, Any]]:
    """One row per (annotator, label), ordered by annotator name then label name; see the
    module docstring for the definitions."""
    annotations = (
        Annotation.objects.filter(
            image__project=project, author__isnull=False, source__in=HUMAN_SOURCES
        )
        .exclude(review_state=ReviewState.REJECTED)
        .order_by("author_id", "created_at", "id")
        .values(
            "author_id",
            "author__username",
            "label_id",
            "label__name",
            "created_at",
            "prompts",
            "predicted_iou",
            "source",
        )
    )
    rows: dict[tuple[int, int | None], AnalyticsRow] = {}
    previous: tuple[int, Any] | None = None
    for a in annotations:
        key = (a["author_id"], a["label_id"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = AnalyticsRow(
                annotator_id=a["author_id"],
                annotator=a["author__username"],
                label_id=a["label_id"],
                label=a["label__name"] or "",
            )
        row.objects += 1
        row.clicks += _clicks(a["prompts"])
        if a["source"] in MODEL_SOURCES and a["predicted_iou"] is not None:
            row.unchanged += 1
        if previous is not None and previous[0] == a["author_id"]:
            gap = (a["created_at"] - previous[1]).total_seconds()
            if 0 <= gap <= idle_seconds:
                row.timed_objects += 1
                row.active_seconds += gap
        previous = (a["author_id"], a["created_at"])
    ordered = sorted(rows.values(), key=lambda r: (r.annotator, r.label, r.label_id or 0))
    return [row.as_dict() for row in ordered]
