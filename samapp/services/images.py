"""Image writes other than upload."""

from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from samapp.models import Image


def image_bytes_read(*, image: Image) -> bytes:
    """The stored file's bytes, read through the default storage.

    Raises LookupError when the row has no file; the storage's FileNotFoundError and other
    OSErrors pass through for the caller to classify."""
    if not image.file.name:
        raise LookupError(f"image {image.pk} has no file")
    with default_storage.open(image.file.name, "rb") as handle:
        return handle.read()


def image_update(*, image: Image, data: dict[str, Any]) -> Image:
    if "status" in data:
        image.status = data["status"]
    if "assignee" in data:
        image.assignee_id = data["assignee"]
    image.save(update_fields=["status", "assignee", "updated_at"])
    return image


def image_delete(*, image: Image) -> None:
    """Delete the row, then the file once the deletion is committed."""
    name, storage = image.file.name, image.file.storage
    with transaction.atomic():
        image.delete()
        if name and not Image.objects.filter(file=name).exists():
            transaction.on_commit(lambda: storage.delete(name))
