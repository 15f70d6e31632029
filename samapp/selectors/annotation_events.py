"""Reads of the annotation change log (`samapp.services.annotation_events` writes it)."""

from samapp.models import AnnotationEvent, Project


def annotation_events_after(
    *, project_id: int, after: int, limit: int = 10_000
) -> list[AnnotationEvent]:
    """The project's events with `seq` above `after`, oldest first, at most `limit`."""
    return list(
        AnnotationEvent.objects.filter(project_id=project_id, seq__gt=after).order_by("seq")[:limit]
    )


def annotation_events_latest_seq(*, project_id: int) -> int:
    """The project's last `seq` (0 before its first change)."""
    seq = Project.objects.filter(pk=project_id).values_list("annotation_seq", flat=True).first()
    return int(seq or 0)
