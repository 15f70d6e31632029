"""Annotation writes with optimistic concurrency; every change is broadcast once, after commit."""

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from samapp.choices import AnnotationSource, ImageStatus, ReviewState
from samapp.errors import (
    ApplicationError,
    PermissionDeniedError,
    PreconditionRequiredError,
    VersionConflictError,
)
from samapp.ml.masks import rle_area, rle_bbox, rle_validate
from samapp.models import Annotation, Image, Label, Membership, Project
from samapp.realtime import contract
from samapp.roles import Capability, membership_require, role_can
from samapp.services.annotation_events import (
    annotation_event_record,
    annotation_events_record,
    annotation_seqs_reserve,
    project_lock,
)
from samapp.services.images import image_work_check, images_reopen

EDITABLE_FIELDS = (
    "label",
    "rle",
    "predicted_iou",
    "source",
    "prompts",
    "model_key",
    "review_state",
    "review_reason",
)
# What a member's own write may claim as its source; `automatic` and `imported` annotations
# are written only by the server's jobs (segment everything, proposals, imports).
MEMBER_SOURCES = (AnnotationSource.MANUAL, AnnotationSource.CLICK, AnnotationSource.BOX)
MODEL_SOURCES = (AnnotationSource.CLICK, AnnotationSource.BOX)
CONTENT_FIELDS = frozenset({"label", "rle", "prompts", "source", "model_key", "predicted_iou"})
REVIEW_FIELDS = frozenset({"review_state", "review_reason"})


def annotation_payload(annotation: Annotation) -> contract.AnnotationPayload:
    """The JSON form sent to clients, over REST and websockets alike."""
    return {
        "id": annotation.id,
        "image": annotation.image_id,
        "label": annotation.label_id,
        "rle": cast(contract.CompressedRle, annotation.rle),
        "bbox": annotation.bbox,
        "area": annotation.area,
        "predicted_iou": annotation.predicted_iou,
        "source": cast(contract.AnnotationSource, annotation.source),
        "prompts": cast(contract.AnnotationPrompts, annotation.prompts),
        "model_key": annotation.model_key,
        "author": annotation.author_id,
        "version": annotation.version,
        "review_state": cast(contract.ReviewState, annotation.review_state),
        "review_reason": annotation.review_reason,
        "reviewed_by": annotation.reviewed_by_id,
        "reviewed_at": annotation.reviewed_at.isoformat() if annotation.reviewed_at else None,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


def _clean_rle(*, image: Image, rle: Any) -> dict[str, Any]:
    try:
        return rle_validate(rle, shape=(image.height, image.width))
    except ValueError as exc:
        raise ApplicationError(f"Invalid mask: {exc}") from exc


def _clean_label(*, image: Image, label: Label | int | None) -> Label | None:
    """The label (given as itself or by id) if it is one of the image's project."""
    if isinstance(label, int):
        found = Label.objects.filter(project_id=image.project_id, pk=label).first()
        if found is None:
            raise ApplicationError(f"No label {label} in this project.")
        return found
    if label is not None and label.project_id != image.project_id:
        raise ApplicationError("That label belongs to another project.")
    return label


def _derived_fields(rle: dict[str, Any]) -> dict[str, Any]:
    return {"bbox": rle_bbox(rle), "area": rle_area(rle)}


def clip_predicted_iou(value: float | None) -> float | None:
    """A model's IoU head is a regression without bounds (it can say 1.02 or -0.1): the
    score stored and shown is clipped to [0, 1]."""
    return None if value is None else min(1.0, max(0.0, float(value)))


def _check_actor(*, actor: Membership, image: Image) -> None:
    if actor.project_id != image.project_id:
        raise ApplicationError("That image belongs to another project.")
    membership_require(actor, Capability.ANNOTATE)
    image_work_check(image=image, actor=actor)


def _clean_provenance(
    *, project: Project, source: str, model_key: str, predicted_iou: float | None
) -> tuple[str, str, float | None]:
    """A member's claim of how a mask was made, as stored: a manual mask names no model and
    no predicted IoU (whatever was sent); a click or box mask was decoded by the project's
    current model (filled in when omitted, refused when another is named) with a predicted
    IoU in [0, 1]."""
    if source not in MEMBER_SOURCES:
        raise ApplicationError(
            f"source must be one of {', '.join(MEMBER_SOURCES)}; "
            "automatic and imported annotations are made by the server's jobs."
        )
    if predicted_iou is not None and not (
        math.isfinite(predicted_iou) and 0.0 <= predicted_iou <= 1.0
    ):
        raise ApplicationError("predicted_iou must be between 0 and 1.")
    if source not in MODEL_SOURCES:
        return source, "", None
    project_model = project.default_model_key
    if model_key and model_key != project_model:
        raise ApplicationError(
            f"model_key {model_key!r} is not this project's model ({project_model!r}): "
            "reload the model and try again."
        )
    return source, project_model, predicted_iou


def _submitted_state(actor: Membership) -> str:
    """Where a member's own work lands: reviewers' and managers' work is accepted; an
    annotator's follows the project's review policy."""
    if role_can(actor.role, Capability.REVIEW):
        return ReviewState.ACCEPTED
    return str(actor.project.review_policy)


def _review_fields(*, actor: Membership, state: str, reason: str | None) -> dict[str, Any]:
    membership_require(actor, Capability.REVIEW)
    return {
        "review_state": state,
        "review_reason": reason or "",
        "reviewed_by": actor.user,
        "reviewed_at": timezone.now(),
    }


UNREVIEWED = {"review_reason": "", "reviewed_by": None, "reviewed_at": None}


def annotation_create(
    *,
    image: Image,
    author: User | None,
    rle: Any,
    label: Label | int | None = None,
    predicted_iou: float | None = None,
    source: str = AnnotationSource.MANUAL,
    prompts: dict[str, Any] | None = None,
    model_key: str = "",
    review_state: str | None = None,
    actor: Membership | None = None,
) -> Annotation:
    """Store one annotation. Without `actor` this is a server-side write (jobs, imports,
    staff tools) whose fields are taken as given (`review_state` defaults to accepted).
    `label` is a label of the image's project or its id (400 otherwise).

    With `actor` (a member's own write, made by them as `author`) the role rules apply: the
    member must be able to annotate this image; provenance is checked
    (`_clean_provenance`); `review_state` may be set only by reviewers and otherwise
    follows `_submitted_state`; a `new` image becomes `in_progress`."""
    clean = _clean_rle(image=image, rle=rle)
    review: dict[str, Any] = {"review_state": review_state or ReviewState.ACCEPTED}
    if actor is not None:
        _check_actor(actor=actor, image=image)
        source, model_key, predicted_iou = _clean_provenance(
            project=actor.project, source=source, model_key=model_key, predicted_iou=predicted_iou
        )
        review = (
            _review_fields(actor=actor, state=review_state, reason="")
            if review_state is not None
            else {"review_state": _submitted_state(actor)}
        )
    with transaction.atomic():
        (seq,) = annotation_seqs_reserve(project_id=image.project_id)
        if actor is not None and image.status == ImageStatus.NEW:
            Image.objects.filter(pk=image.pk, status=ImageStatus.NEW).update(
                status=ImageStatus.IN_PROGRESS, updated_at=timezone.now()
            )
            image.status = ImageStatus.IN_PROGRESS
        annotation = Annotation.objects.create(
            image=image,
            label=_clean_label(image=image, label=label),
            rle=clean,
            predicted_iou=clip_predicted_iou(predicted_iou),
            source=source,
            prompts=prompts or {},
            model_key=model_key,
            author=author,
            **review,
            **_derived_fields(clean),
        )
        _annotation_event_record(image=image, annotation=annotation, created=True, seq=seq)
    return annotation


def _annotation_event_record(
    *, image: Image, annotation: Annotation, created: bool, seq: int
) -> None:
    """Log the created or updated `annotation` of `image` at its reserved `seq` (teammates
    get it after commit)."""
    annotation_event_record(
        project_id=image.project_id,
        event=contract.ANNOTATION_CREATED if created else contract.ANNOTATION_UPDATED,
        payload=annotation_payload(annotation),
        seq=seq,
    )


@dataclass(frozen=True)
class AnnotationDraft:
    """One annotation a server-side job made (an import, segment everything, proposals),
    for `annotations_bulk_create`."""

    image: Image
    rle: Any
    label: Label | None = None
    predicted_iou: float | None = None
    prompts: dict[str, Any] = field(default_factory=dict)
    model_key: str = ""


def annotations_bulk_create(
    *,
    drafts: Sequence[AnnotationDraft],
    author: User | None,
    source: str = AnnotationSource.IMPORTED,
    review_state: str = ReviewState.PROPOSED,
) -> list[Annotation]:
    """Create many annotations under the same rules as `annotation_create`'s server-side
    writes, all or nothing, with one "annotations.bulk_created" event per project instead of
    one event (mask included) per row: an import can hold tens of thousands, and a page that
    shows one of the images fetches its annotations once."""
    rows = []
    for draft in drafts:
        clean = _clean_rle(image=draft.image, rle=draft.rle)
        rows.append(
            Annotation(
                image=draft.image,
                label=_clean_label(image=draft.image, label=draft.label),
                rle=clean,
                predicted_iou=clip_predicted_iou(draft.predicted_iou),
                source=source,
                prompts=draft.prompts,
                model_key=draft.model_key,
                author=author,
                review_state=review_state,
                **_derived_fields(clean),
            )
        )
    # The image of each draft, by project: its length is the project's count.
    by_project: dict[int, list[int]] = {}
    for draft in drafts:
        by_project.setdefault(draft.image.project_id, []).append(draft.image.id)
    with transaction.atomic():
        for project_id in sorted(by_project):
            project_lock(project_id=project_id)
        created = Annotation.objects.bulk_create(rows, batch_size=500)
        for project_id, image_ids in by_project.items():
            annotation_event_record(
                project_id=project_id,
                event=contract.ANNOTATIONS_BULK_CREATED,
                payload=contract.AnnotationsBulkCreatedPayload(
                    count=len(image_ids), images=sorted(set(image_ids))
                ),
            )
    return created


def annotations_discard(*, annotations: QuerySet[Annotation]) -> int:
    """Delete `annotations` without a version check (what a job replaces, what goes with a
    deleted label), all in one transaction with their deletions logged in one batch; returns
    how many. The queryset is read under the projects' locks, so a change a teammate committed
    meanwhile counts: a proposal accepted since no longer matches a filter on the pending
    state, and stays."""
    project_ids = sorted(set(annotations.values_list("image__project_id", flat=True)))
    with transaction.atomic():
        for project_id in project_ids:
            project_lock(project_id=project_id)
        doomed = list(annotations.values_list("pk", "image__project_id", "image_id", "version"))
        Annotation.objects.filter(pk__in=[pk for pk, *_ in doomed]).delete()
        for project_id in project_ids:
            annotation_events_record(
                project_id=project_id,
                events=[
                    (
                        contract.ANNOTATION_DELETED,
                        contract.AnnotationDeletedPayload(id=pk, image=image, version=version + 1),
                    )
                    for pk, project, image, version in doomed
                    if project == project_id
                ],
            )
    return len(doomed)


def _require_version(expected_version: int | None) -> int:
    if expected_version is None:
        raise PreconditionRequiredError(
            "This write needs the version it is based on: send If-Match or 'version'."
        )
    return expected_version


def _check_author(*, annotation: Annotation, actor: Membership) -> None:
    _check_actor(actor=actor, image=annotation.image)
    if not role_can(actor.role, Capability.REVIEW) and annotation.author_id != actor.user_id:
        raise PermissionDeniedError("Annotators change only their own annotations.")


def _member_changes(
    *, annotation: Annotation, actor: Membership, changes: dict[str, Any]
) -> dict[str, Any]:
    """The role rules of a member's edit: annotators edit their own work only, and any
    change they make to its content is a new submission (it lands in the review policy's
    state, the previous review cleared); review fields need a reviewer; provenance is
    checked as on creation."""
    _check_author(annotation=annotation, actor=actor)
    if changes.keys() & {"source", "model_key", "predicted_iou"}:
        source, model_key, predicted_iou = _clean_provenance(
            project=actor.project,
            source=changes.get("source", annotation.source),
            model_key=changes.get("model_key", ""),
            predicted_iou=changes.get("predicted_iou", annotation.predicted_iou),
        )
        changes.update(source=source, model_key=model_key, predicted_iou=predicted_iou)
    if changes.keys() & REVIEW_FIELDS:
        state = changes.pop("review_state", annotation.review_state)
        reason = changes.pop("review_reason", None)
        changes.update(_review_fields(actor=actor, state=state, reason=reason))
    elif changes.keys() & CONTENT_FIELDS and not role_can(actor.role, Capability.REVIEW):
        changes.update(review_state=_submitted_state(actor), **UNREVIEWED)
    return changes


def annotation_update(
    *,
    annotation: Annotation,
    expected_version: int | None,
    data: dict[str, Any],
    actor: Membership | None = None,
) -> Annotation:
    """Apply `data` only if the stored version is still `expected_version`; with `actor` (a
    member's edit) under the rules of `_member_changes`.

    The check and the write are one UPDATE … WHERE version = expected, so two writers
    racing on the same version cannot both win."""
    expected = _require_version(expected_version)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))}.")
    changes = dict(data)
    image = annotation.image
    if actor is not None:
        changes = _member_changes(annotation=annotation, actor=actor, changes=changes)
    if "rle" in changes:
        changes["rle"] = _clean_rle(image=image, rle=changes["rle"])
        changes.update(_derived_fields(changes["rle"]))
    if "label" in changes:
        changes["label"] = _clean_label(image=image, label=changes["label"])
    if "predicted_iou" in changes:
        changes["predicted_iou"] = clip_predicted_iou(changes["predicted_iou"])
    changes["updated_at"] = timezone.now()
    with transaction.atomic():
        (seq,) = annotation_seqs_reserve(project_id=image.project_id)
        updated = Annotation.objects.filter(pk=annotation.pk, version=expected).update(
            version=F("version") + 1, **changes
        )
        if updated and annotation.version == expected:
            # The row was what this instance holds: the stored result is known without
            # reading it back.
            current = copy.copy(annotation)
            for field, value in changes.items():
                setattr(current, field, value)
            current.version = expected + 1
        else:
            found = Annotation.objects.filter(pk=annotation.pk).first()
            if found is None:
                raise ApplicationError("This annotation was deleted meanwhile.")
            if not updated:
                raise VersionConflictError(
                    f"Version {expected} is stale: the annotation is at version {found.version}.",
                    {"current": annotation_payload(found)},
                )
            current = found
        if changes.get("review_state") == ReviewState.REJECTED:
            images_reopen(images=Image.objects.filter(pk=image.pk))
        _annotation_event_record(image=image, annotation=current, created=False, seq=seq)
    return current


def annotation_delete(
    *, annotation: Annotation, expected_version: int | None, actor: Membership | None = None
) -> None:
    """Delete if the stored version is still `expected_version`; with `actor` (a member),
    annotators delete only their own work that no reviewer has accepted."""
    expected = _require_version(expected_version)
    if actor is not None:
        _check_author(annotation=annotation, actor=actor)
        if (
            not role_can(actor.role, Capability.REVIEW)
            and annotation.review_state == ReviewState.ACCEPTED
            and annotation.reviewed_at is not None
        ):
            raise PermissionDeniedError(
                "A reviewer accepted this annotation: edit it (it goes back to review) "
                "or ask a reviewer to remove it."
            )
    project_id, annotation_id = annotation.image.project_id, annotation.pk
    image_id = annotation.image_id
    with transaction.atomic():
        (seq,) = annotation_seqs_reserve(project_id=project_id)
        deleted, _ = Annotation.objects.filter(pk=annotation_id, version=expected).delete()
        if not deleted:
            current = Annotation.objects.filter(pk=annotation_id).first()
            if current is None:
                raise ApplicationError("This annotation was deleted meanwhile.")
            raise VersionConflictError(
                f"Version {expected} is stale: the annotation is at version {current.version}.",
                {"current": annotation_payload(current)},
            )
        annotation_event_record(
            project_id=project_id,
            event=contract.ANNOTATION_DELETED,
            payload=contract.AnnotationDeletedPayload(
                id=annotation_id, image=image_id, version=expected + 1
            ),
            seq=seq,
        )
