"""Per-image label maps painted from the RLE master copies (class and instance indices)."""

import io

import numpy as np
import PIL.Image

from samapp.errors import ApplicationError
from samapp.ml.masks import rle_to_mask
from samapp.selectors.datasets import DatasetItem

MAX_PALETTE_INDEX = 254  # 0 is background, 255 is VOC's "void"


def paint(item: DatasetItem, class_of: dict[int, int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(class map, instance map, the label index of each instance 1..n).

    Larger masks are painted first, so a small object over a large one stays visible; ties
    keep annotation order. Unlabeled annotations (or labels outside the export) are left out.
    """
    image = item.image
    classes = np.zeros((image.height, image.width), dtype=np.uint8)
    instances = np.zeros((image.height, image.width), dtype=np.uint16)
    kept = [a for a in item.annotations if a.label_id in class_of]
    kept.sort(key=lambda a: -a.area)
    instance_classes: list[int] = []
    for number, annotation in enumerate(kept, start=1):
        mask = rle_to_mask(annotation.rle)
        classes[mask] = class_of[annotation.label_id or 0]
        instances[mask] = number
        instance_classes.append(class_of[annotation.label_id or 0])
    return classes, instances, instance_classes


def palette_png(indices: np.ndarray, palette: list[int]) -> bytes:
    picture = PIL.Image.fromarray(indices.astype(np.uint8), mode="P")
    picture.putpalette(palette)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def gray16_png(indices: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(indices.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def check_label_count(count: int) -> None:
    if count > MAX_PALETTE_INDEX:
        raise ApplicationError(
            f"{count} labels do not fit an 8-bit palette mask (at most {MAX_PALETTE_INDEX})."
        )
