"""Bulk review: accept or reject many annotations (e.g. segment-everything proposals) at once."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from samapp.errors import ApplicationError
from samapp.models import Annotation, Project, ReviewState
from samapp.realtime.contract import ANNOTATION_UPDATED
from samapp.services.annotation_events import annotation_event_record, project_lock
from samapp.services.annotations import annotation_payload

MAX_REVIEW_IDS = 5000


def annotations_review(
    *, project: Project, ids: list[int], review_state: str
) -> dict[str, list[int]]:
    """Set `review_state` on the project's annotations among `ids`; each change bumps the
    version and is logged and broadcast once. Unknown ids (or other projects') are reported."""
    if review_state not in (ReviewState.ACCEPTED, ReviewState.REJECTED):
        raise ApplicationError("review_state must be 'accepted' or 'rejected'.")
    if len(ids) > MAX_REVIEW_IDS:
        raise ApplicationError(f"At most {MAX_REVIEW_IDS} annotations per request.")
    wanted = list(dict.fromkeys(ids))
    with transaction.atomic():
        project_lock(project_id=project.pk)
        found = Annotation.objects.filter(image__project=project, pk__in=wanted)
        found_ids = set(found.values_list("pk", flat=True))
        to_change = list(found.exclude(review_state=review_state).values_list("pk", flat=True))
        Annotation.objects.filter(pk__in=to_change).update(
            review_state=review_state, version=F("version") + 1, updated_at=timezone.now()
        )
        for annotation in Annotation.objects.filter(pk__in=to_change).order_by("pk"):
            annotation_event_record(
                project_id=project.pk,
                event=ANNOTATION_UPDATED,
                payload=annotation_payload(annotation),
            )
    return {
        "updated": sorted(to_change),
        "unchanged": sorted(found_ids - set(to_change)),
        "missing": [pk for pk in wanted if pk not in found_ids],
    }
