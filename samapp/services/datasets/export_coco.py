"""COCO instances, laid out as pycocotools and datumaro's `coco_instances` read it:

  annotations/instances_<subset>.json   one file per split (train, and val when asked for)
  images/<subset>/<file_name>           the images of that split

Ids are renumbered from 1 in export order (images by id, annotations by image then id,
categories by label id), so the same data always gives the same bytes: an export of an
import of an export is identical to the first export, byte for byte.
"""

import json
import shutil
import tempfile
from contextlib import ExitStack
from typing import IO, Any

from samapp.models import Label
from samapp.services.datasets.common import (
    ExportOptions,
    ExportRun,
    NameRegistry,
    polygon_rings,
    split_of,
)

ANNOTATIONS_DIR = "annotations/"
IMAGES_DIR = "images/"


def annotations_name(subset: str) -> str:
    return f"{ANNOTATIONS_DIR}instances_{subset}.json"


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
    """(segmentation, iscrowd). Polygons when asked for, unless the mask has holes (kept as
    RLE unless `holes` is "fill") or no ring of 3+ points."""
    if options.mask_format == "polygons":
        rings = polygon_rings(rle, options)
        if rings:
            return rings, 0
    return {"size": list(rle["size"]), "counts": rle["counts"]}, int(options.crowd_rle)


def _scratch(stack: ExitStack) -> IO[str]:
    return stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))


class _Subset:
    """One split's images and annotations, written to temporary files as they come."""

    def __init__(self, stack: ExitStack) -> None:
        self.images, self.annotations = _scratch(stack), _scratch(stack)
        self.image_count = self.annotation_count = 0

    def add_image(self, entry: dict[str, Any]) -> None:
        self.images.write(("," if self.image_count else "") + "\n" + _dumps(entry))
        self.image_count += 1

    def add_annotation(self, row: dict[str, Any]) -> None:
        self.annotations.write(("," if self.annotation_count else "") + "\n" + _dumps(row))
        self.annotation_count += 1

    def write(self, target: IO[str], head: dict[str, Any]) -> None:
        target.write(_dumps(head)[:-1] + ',\n"images":[')
        self.images.seek(0)
        shutil.copyfileobj(self.images, target)
        target.write('\n],\n"annotations":[')
        self.annotations.seek(0)
        shutil.copyfileobj(self.annotations, target)
        target.write("\n]}\n")


def coco_write(run: ExportRun) -> None:
    category_of = {label.id: index for index, label in enumerate(run.labels, start=1)}
    names = NameRegistry()
    annotation_id = 0
    with ExitStack() as stack:
        subsets: dict[str, _Subset] = {"train": _Subset(stack)}
        for image_id, item in enumerate(run.items, start=1):
            image = item.image
            file_name = names.name_for(image)
            split = split_of(image, run.options.val_split)
            subset = subsets.get(split) or subsets.setdefault(split, _Subset(stack))
            if run.options.include_images:
                run.sink.write_image(f"{IMAGES_DIR}{split}/{file_name}", image)
            subset.add_image(
                {
                    "id": image_id,
                    "file_name": file_name,
                    "width": image.width,
                    "height": image.height,
                }
            )
            for annotation in item.annotations:
                category_id = category_of.get(annotation.label_id or 0)
                if category_id is None:
                    continue  # unlabeled: COCO has no category for it
                annotation_id += 1
                segmentation, iscrowd = coco_segmentation(annotation.rle, run.options)
                subset.add_annotation(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": category_id,
                        "segmentation": segmentation,
                        "area": annotation.area,
                        "bbox": annotation.bbox,
                        "iscrowd": iscrowd,
                    }
                )
            run.progress()
        head = {
            "info": {
                "description": run.project.name,
                "version": "1.0",
                "contributor": "SAM Studio",
            },
            "licenses": [],
            "categories": coco_categories(run.labels),
        }
        for split in sorted(subsets):
            with run.sink.open_text(annotations_name(split)) as target:
                subsets[split].write(target, head)
