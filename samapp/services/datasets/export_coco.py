"""COCO instances: annotations.json (RLE or polygons) + images/.

Ids are renumbered from 1 in export order (images by id, annotations by image then id,
categories by label id), so the same data always gives the same bytes: an export of an
import of an export is identical to the first export, byte for byte.
"""

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from samapp.ml.masks import mask_to_polygons, rle_to_mask
from samapp.models import Label, Project
from samapp.selectors.datasets import DatasetItem
from samapp.services.datasets.common import ExportOptions, NameRegistry, ZipSink

ANNOTATIONS_NAME = "annotations.json"
IMAGES_DIR = "images/"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def coco_categories(labels: list[Label]) -> list[dict[str, Any]]:
    return [
        {"id": index, "name": label.name, "supercategory": "", "color": label.color}
        for index, label in enumerate(labels, start=1)
    ]


def coco_segmentation(
    rle: dict[str, Any], options: ExportOptions
) -> tuple[list[list[float]] | dict[str, Any], int]:
    """(segmentation, iscrowd). Polygons when asked for and the mask has a ring of 3+
    points; a mask too small for one is written as its RLE rather than dropped."""
    if options.mask_format == "polygons":
        rings = mask_to_polygons(rle_to_mask(rle), options.tolerance)
        if rings:
            return rings, 0
    return {"size": list(rle["size"]), "counts": rle["counts"]}, int(options.crowd_rle)


def coco_write(
    *,
    sink: ZipSink,
    project: Project,
    labels: list[Label],
    items: Iterable[DatasetItem],
    options: ExportOptions,
    progress: Callable[[], None],
) -> None:
    category_of = {label.id: index for index, label in enumerate(labels, start=1)}
    names = NameRegistry()
    annotation_id = 0
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as images_part,
        tempfile.TemporaryFile("w+", encoding="utf-8") as annotations_part,
    ):
        for image_id, item in enumerate(items, start=1):
            image = item.image
            file_name = names.name_for(image)
            if options.include_images:
                sink.write_image(IMAGES_DIR + file_name, image)
            entry = {
                "id": image_id,
                "file_name": file_name,
                "width": image.width,
                "height": image.height,
            }
            images_part.write(("," if image_id > 1 else "") + "\n" + _dumps(entry))
            for annotation in item.annotations:
                category_id = category_of.get(annotation.label_id or 0)
                if category_id is None:
                    continue  # unlabeled: COCO has no category for it
                annotation_id += 1
                segmentation, iscrowd = coco_segmentation(annotation.rle, options)
                row = {
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": category_id,
                    "segmentation": segmentation,
                    "area": annotation.area,
                    "bbox": annotation.bbox,
                    "iscrowd": iscrowd,
                }
                annotations_part.write(("," if annotation_id > 1 else "") + "\n" + _dumps(row))
            progress()
        head = {
            "info": {"description": project.name, "version": "1.0", "contributor": "SAM Studio"},
            "licenses": [],
            "categories": coco_categories(labels),
        }
        with sink.open_text(ANNOTATIONS_NAME) as target:
            target.write(_dumps(head)[:-1] + ',\n"images":[')
            images_part.seek(0)
            shutil.copyfileobj(images_part, target)
            target.write('\n],\n"annotations":[')
            annotations_part.seek(0)
            shutil.copyfileobj(annotations_part, target)
            target.write("\n]}\n")
