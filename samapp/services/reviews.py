"""Review decisions: accept or reject many annotations (e.g. segment-everything proposals or an
annotator's work) at once, with a reason the authors are shown."""

from typing import cast

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from samapp.choices import ReviewState
from samapp.errors import ApplicationError
from samapp.models import Annotation, Image, Project
from samapp.realtime import contract
from samapp.roles import project_writable_check
from samapp.services.annotation_events import annotation_event_record, project_lock
from samapp.services.images import images_reopen

MAX_REVIEW_IDS = 5000
MAX_REASON_CHARS = 1000


def annotations_review(
    *,
    project: Project,
    ids: list[int],
    review_state: str,
    reason: str = "",
    reviewer: User | None = None,
) -> dict[str, list[int]]:
    """Set `review_state` (with `reason`, the reviewer and the time) on the project's
    annotations among `ids`; each change bumps the version, and the decision is logged and
    broadcast once, as one `annotations.reviewed` event naming every annotation it changed.
    Unknown ids (or other projects') are reported. A rejection sends its image back to
    `in_progress` if it was done or reviewed, so it returns to its annotator's queue."""
    project_writable_check(project)
    if review_state not in (ReviewState.ACCEPTED, ReviewState.REJECTED):
        raise ApplicationError("review_state must be 'accepted' or 'rejected'.")
    if len(ids) > MAX_REVIEW_IDS:
        raise ApplicationError(f"At most {MAX_REVIEW_IDS} annotations per request.")
    if len(reason) > MAX_REASON_CHARS:
        raise ApplicationError(f"A reason has at most {MAX_REASON_CHARS} characters.")
    wanted = list(dict.fromkeys(ids))
    now = timezone.now()
    with transaction.atomic():
        project_lock(project_id=project.pk)
        found = Annotation.objects.filter(image__project=project, pk__in=wanted)
        found_ids = set(found.values_list("pk", flat=True))
        to_change = list(
            found.exclude(review_state=review_state, review_reason=reason).values_list(
                "pk", flat=True
            )
        )
        changed = Annotation.objects.filter(pk__in=to_change)
        changed.update(
            review_state=review_state,
            review_reason=reason,
            reviewed_by=reviewer,
            reviewed_at=now,
            version=F("version") + 1,
            updated_at=now,
        )
        if review_state == ReviewState.REJECTED:
            images_reopen(images=Image.objects.filter(pk__in=changed.values("image_id")))
        if to_change:
            annotation_event_record(
                project_id=project.pk,
                event=contract.ANNOTATIONS_REVIEWED,
                payload=contract.AnnotationsReviewedPayload(
                    review_state=cast(contract.ReviewState, review_state),
                    review_reason=reason,
                    reviewed_by=reviewer.pk if reviewer else None,
                    reviewed_at=now.isoformat(),
                    annotations=[
                        contract.ReviewedAnnotation(id=pk, image=image, version=version)
                        for pk, image, version in changed.order_by("pk").values_list(
                            "pk", "image_id", "version"
                        )
                    ],
                ),
            )
    return {
        "updated": sorted(to_change),
        "unchanged": sorted(found_ids - set(to_change)),
        "missing": [pk for pk in wanted if pk not in found_ids],
    }
