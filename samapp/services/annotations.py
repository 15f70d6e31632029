"""Annotation writes with optimistic concurrency; every change is broadcast once, after commit."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from samapp.errors import ApplicationError, PreconditionRequiredError, VersionConflictError
from samapp.ml.masks import rle_area, rle_bbox, rle_validate
from samapp.models import Annotation, AnnotationSource, Image, Label, ReviewState
from samapp.services.annotation_events import annotation_event_record, project_lock

EDITABLE_FIELDS = (
    "label",
    "rle",
    "predicted_iou",
    "source",
    "prompts",
    "model_key",
    "review_state",
)


def annotation_payload(annotation: Annotation) -> dict[str, Any]:
    """The JSON form sent to clients, over REST and websockets alike."""
    return {
        "id": annotation.id,
        "image": annotation.image_id,
        "label": annotation.label_id,
        "rle": annotation.rle,
        "bbox": annotation.bbox,
        "area": annotation.area,
        "predicted_iou": annotation.predicted_iou,
        "source": annotation.source,
        "prompts": annotation.prompts,
        "model_key": annotation.model_key,
        "author": annotation.author_id,
        "version": annotation.version,
        "review_state": annotation.review_state,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


def _broadcast_after_commit(*, project_id: int, event: str, payload: dict[str, Any]) -> None:
    # Logged with a per-project seq in this transaction (catch-up), broadcast after commit.
    annotation_event_record(project_id=project_id, event=event, payload=payload)


def _clean_rle(*, image: Image, rle: Any) -> dict[str, Any]:
    try:
        clean = rle_validate(rle)
    except ValueError as exc:
        raise ApplicationError(f"Invalid mask: {exc}") from exc
    if list(clean["size"]) != [image.height, image.width]:
        raise ApplicationError(
            f"Mask size {clean['size']} does not match the image ({image.height}, {image.width})."
        )
    return clean


def _clean_label(*, image: Image, label: Label | None) -> Label | None:
    if label is not None and label.project_id != image.project_id:
        raise ApplicationError("That label belongs to another project.")
    return label


def _derived_fields(rle: dict[str, Any]) -> dict[str, Any]:
    return {"bbox": rle_bbox(rle), "area": rle_area(rle)}


def clip_predicted_iou(value: float | None) -> float | None:
    """A model's IoU head is a regression without bounds (it can say 1.02 or -0.1): the
    score stored and shown is clipped to [0, 1]."""
    return None if value is None else min(1.0, max(0.0, float(value)))


def annotation_create(
    *,
    image: Image,
    author: User | None,
    rle: Any,
    label: Label | None = None,
    predicted_iou: float | None = None,
    source: str = AnnotationSource.MANUAL,
    prompts: dict[str, Any] | None = None,
    model_key: str = "",
    review_state: str = ReviewState.ACCEPTED,
) -> Annotation:
    clean = _clean_rle(image=image, rle=rle)
    with transaction.atomic():
        project_lock(project_id=image.project_id)
        annotation = Annotation.objects.create(
            image=image,
            label=_clean_label(image=image, label=label),
            rle=clean,
            predicted_iou=clip_predicted_iou(predicted_iou),
            source=source,
            prompts=prompts or {},
            model_key=model_key,
            author=author,
            review_state=review_state,
            **_derived_fields(clean),
        )
        _broadcast_after_commit(
            project_id=image.project_id,
            event="annotation.created",
            payload=annotation_payload(annotation),
        )
    return annotation


def annotations_bulk_create(
    *,
    items: list[tuple[Image, Label | None, Any]],
    author: User | None,
    source: str = AnnotationSource.IMPORTED,
    review_state: str = ReviewState.PROPOSED,
) -> int:
    """Create many annotations (image, label, rle) under the same rules as
    `annotation_create`, all or nothing, with one "annotations.bulk_created" event per
    project instead of one event per row (imports can hold tens of thousands)."""
    rows = []
    for image, label, rle in items:
        clean = _clean_rle(image=image, rle=rle)
        rows.append(
            Annotation(
                image=image,
                label=_clean_label(image=image, label=label),
                rle=clean,
                source=source,
                author=author,
                review_state=review_state,
                **_derived_fields(clean),
            )
        )
    by_project: dict[int, set[int]] = {}
    for image, _, _ in items:
        by_project.setdefault(image.project_id, set()).add(image.id)
    with transaction.atomic():
        for project_id in sorted(by_project):
            project_lock(project_id=project_id)
        Annotation.objects.bulk_create(rows, batch_size=500)
        for project_id, image_ids in by_project.items():
            _broadcast_after_commit(
                project_id=project_id,
                event="annotations.bulk_created",
                payload={"count": len(rows), "images": sorted(image_ids)[:1000]},
            )
    return len(rows)


def _require_version(expected_version: int | None) -> int:
    if expected_version is None:
        raise PreconditionRequiredError(
            "This write needs the version it is based on: send If-Match or 'version'."
        )
    return expected_version


def annotation_update(
    *, annotation: Annotation, expected_version: int | None, data: dict[str, Any]
) -> Annotation:
    """Apply `data` only if the stored version is still `expected_version`.

    The check and the write are one UPDATE … WHERE version = expected, so two writers
    racing on the same version cannot both win."""
    expected = _require_version(expected_version)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))}.")
    changes = dict(data)
    image = annotation.image
    if "rle" in changes:
        changes["rle"] = _clean_rle(image=image, rle=changes["rle"])
        changes.update(_derived_fields(changes["rle"]))
    if "label" in changes:
        changes["label"] = _clean_label(image=image, label=changes["label"])
    if "predicted_iou" in changes:
        changes["predicted_iou"] = clip_predicted_iou(changes["predicted_iou"])
    with transaction.atomic():
        project_lock(project_id=image.project_id)
        updated = Annotation.objects.filter(pk=annotation.pk, version=expected).update(
            version=F("version") + 1, **changes
        )
        current = Annotation.objects.select_related("image").filter(pk=annotation.pk).first()
        if current is None:
            raise ApplicationError("This annotation was deleted meanwhile.")
        if not updated:
            raise VersionConflictError(
                f"Version {expected} is stale: the annotation is at version {current.version}.",
                {"current": annotation_payload(current)},
            )
        _broadcast_after_commit(
            project_id=image.project_id,
            event="annotation.updated",
            payload=annotation_payload(current),
        )
    return current


def annotation_delete(*, annotation: Annotation, expected_version: int | None) -> None:
    expected = _require_version(expected_version)
    project_id, annotation_id = annotation.image.project_id, annotation.pk
    with transaction.atomic():
        project_lock(project_id=project_id)
        deleted, _ = Annotation.objects.filter(pk=annotation_id, version=expected).delete()
        if not deleted:
            current = Annotation.objects.filter(pk=annotation_id).first()
            if current is None:
                raise ApplicationError("This annotation was deleted meanwhile.")
            raise VersionConflictError(
                f"Version {expected} is stale: the annotation is at version {current.version}.",
                {"current": annotation_payload(current)},
            )
        _broadcast_after_commit(
            project_id=project_id,
            event="annotation.deleted",
            payload={"id": annotation_id, "version": expected + 1},
        )
