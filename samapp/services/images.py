"""Image writes other than upload."""

from typing import Any

from django.db import transaction

from samapp.models import Image


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
