"""Image writes other than upload."""

from collections.abc import Sequence
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from samapp.choices import ImageStatus
from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import Image, Membership, Project
from samapp.roles import Capability, membership_require, role_can, role_can_move_image

MAX_ASSIGN_IMAGES = 1000


def image_bytes_read(*, image: Image) -> bytes:
    """The stored file's bytes, read through the default storage.

    Raises LookupError when the row has no file; the storage's FileNotFoundError and other
    OSErrors pass through for the caller to classify."""
    if not image.file.name:
        raise LookupError(f"image {image.pk} has no file")
    with default_storage.open(image.file.name, "rb") as handle:
        data: bytes = handle.read()
    return data


def image_work_check(*, image: Image, actor: Membership) -> None:
    """An annotator (a role that cannot review) works only on images assigned to them or to
    nobody, and never on an image already reviewed."""
    if role_can(actor.role, Capability.REVIEW):
        return
    if image.assignee_id not in (None, actor.user_id):
        raise PermissionDeniedError("This image is assigned to someone else.")
    if image.status == ImageStatus.REVIEWED:
        raise PermissionDeniedError("This image is reviewed: ask a reviewer to reopen it.")


def image_status_change(*, image: Image, status: str, actor: Membership) -> Image:
    """Move `image` to `status` if the actor's role may make that transition
    (`samapp.roles.IMAGE_TRANSITIONS`)."""
    membership_require(actor, Capability.ANNOTATE)
    if status not in ImageStatus.values:
        raise ApplicationError(f"Unknown status {status!r}.")
    image_work_check(image=image, actor=actor)
    if not role_can_move_image(actor.role, image.status, status):
        raise PermissionDeniedError(
            f"Your role ({actor.role}) cannot move an image from {image.status} to {status}."
        )
    if status != image.status:
        image.status = status
        image.save(update_fields=["status", "updated_at"])
    return image


def _check_assignee(*, project: Project, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    role = (
        Membership.objects.filter(project=project, user_id=assignee_id)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise ApplicationError("The assignee must be a member of this project.")
    if not role_can(role, Capability.ANNOTATE):
        raise ApplicationError(f"A {role} cannot annotate: assign images to someone who can.")


def images_reopen(*, images: QuerySet[Image]) -> int:
    """Send done or reviewed images back to `in_progress` (their work was rejected): they
    return to their annotators' queues."""
    return images.filter(status__in=(ImageStatus.DONE, ImageStatus.REVIEWED)).update(
        status=ImageStatus.IN_PROGRESS, updated_at=timezone.now()
    )


def image_update(*, image: Image, data: dict[str, Any], actor: Membership) -> Image:
    """Change an image's status (by the transition table) and/or assignee (managers)."""
    if "assignee" in data:
        membership_require(actor, Capability.MANAGE)
        _check_assignee(project=image.project, assignee_id=data["assignee"])
    if "status" in data:
        image_status_change(image=image, status=data["status"], actor=actor)
    if "assignee" in data:
        image.assignee_id = data["assignee"]
        image.save(update_fields=["assignee", "updated_at"])
    return image


def images_assign(
    *, project: Project, image_ids: Sequence[int], assignee_id: int | None, actor: Membership
) -> dict[str, list[int]]:
    """Assign many of the project's images to one member (or to nobody) in one write; ids
    that are not the project's images are reported as missing."""
    membership_require(actor, Capability.MANAGE)
    if len(image_ids) > MAX_ASSIGN_IMAGES:
        raise ApplicationError(f"At most {MAX_ASSIGN_IMAGES} images per request.")
    _check_assignee(project=project, assignee_id=assignee_id)
    wanted = list(dict.fromkeys(image_ids))
    found = Image.objects.filter(project=project, pk__in=wanted)
    found_ids = set(found.values_list("pk", flat=True))
    found.update(assignee_id=assignee_id, updated_at=timezone.now())
    return {
        "assigned": sorted(found_ids),
        "missing": [pk for pk in wanted if pk not in found_ids],
    }


def image_delete(*, image: Image) -> None:
    """Delete the row, then the file once the deletion is committed."""
    name, storage = image.file.name, image.file.storage
    with transaction.atomic():
        image.delete()
        if name and not Image.objects.filter(file=name).exists():
            transaction.on_commit(lambda: storage.delete(name))
