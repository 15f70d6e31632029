"""CVAT for images 1.1: annotations.xml + images/<name>, as CVAT and datumaro's `cvat`
importer read it.

Every object is a `<mask>` (CVAT's mask RLE: run lengths over the object's box, row by row,
starting with a background run; `left`, `top`, `width`, `height` place the box), or with
`mask_format` "polygons" a `<polygon>` per part (the parts of one object share a
`group_id`), except a mask with holes, which stays a `<mask>` unless `holes` is "fill".
"""

import shutil
import tempfile
from xml.sax.saxutils import quoteattr

import numpy as np

from samapp.ml.masks import rle_to_mask
from samapp.models import Annotation, Label, Project
from samapp.services.datasets.common import (
    ExportOptions,
    ExportRun,
    NameRegistry,
    polygon_rings,
)

ANNOTATIONS_NAME = "annotations.xml"


def cvat_mask_rle(mask: np.ndarray) -> tuple[list[int], int, int, int, int]:
    """(run lengths, left, top, width, height) of a non-empty mask in CVAT's mask format."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : rows[-1] + 1, left : cols[-1] + 1].ravel()
    changes = np.flatnonzero(crop[1:] != crop[:-1]) + 1
    runs = np.diff(np.concatenate([[0], changes, [crop.size]])).tolist()
    height, width = int(rows[-1]) + 1 - top, int(cols[-1]) + 1 - left
    return ([0] if crop[0] else []) + runs, left, top, width, height


def _points(ring: list[float]) -> str:
    return ";".join(f"{x:.2f},{y:.2f}" for x, y in zip(ring[::2], ring[1::2], strict=True))


def _shapes(annotation: Annotation, label: str, group: int, options: ExportOptions) -> str:
    common = f'label={quoteattr(label)} source="manual" occluded="0" z_order="0"'
    if options.mask_format == "polygons":
        rings = polygon_rings(annotation.rle, options)
        if rings:
            group_attr = f' group_id="{group}"' if len(rings) > 1 else ""
            return "".join(
                f'    <polygon {common}{group_attr} points="{_points(ring)}"></polygon>\n'
                for ring in rings
            )
    mask = rle_to_mask(annotation.rle)
    if not mask.any():
        return ""
    runs, left, top, width, height = cvat_mask_rle(mask)
    counts = ", ".join(map(str, runs))
    return (
        f'    <mask {common} rle="{counts}" left="{left}" top="{top}" '
        f'width="{width}" height="{height}"></mask>\n'
    )


def _meta(project: Project, labels: list[Label], size: int) -> str:
    rows = "".join(
        f"        <label>\n          <name>{_text(label.name)}</name>\n"
        f"          <color>{_text(label.color)}</color>\n          <type>any</type>\n"
        "          <attributes></attributes>\n        </label>\n"
        for label in labels
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        f"  <meta>\n    <task>\n      <name>{_text(project.name)}</name>\n"
        f"      <size>{size}</size>\n      <mode>annotation</mode>\n"
        f"      <labels>\n{rows}      </labels>\n    </task>\n  </meta>\n"
    )


def _text(value: str) -> str:
    return quoteattr(value)[1:-1]


def cvat_write(run: ExportRun) -> None:
    name_of = {label.id: label.name for label in run.labels}
    names = NameRegistry()
    count = group = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as body:
        for frame, item in enumerate(run.items):
            image = item.image
            file_name = names.name_for(image)
            if run.options.include_images:
                run.sink.write_image(f"images/{file_name}", image)
            body.write(
                f'  <image id="{frame}" name={quoteattr(file_name)} '
                f'width="{image.width}" height="{image.height}">\n'
            )
            for annotation in item.annotations:
                label = name_of.get(annotation.label_id or 0)
                if label is not None:
                    group += 1
                    body.write(_shapes(annotation, label, group, run.options))
            body.write("  </image>\n")
            count += 1
            run.progress()
        with run.sink.open_text(ANNOTATIONS_NAME) as target:
            target.write(_meta(run.project, run.labels, count))
            body.seek(0)
            shutil.copyfileobj(body, target)
            target.write("</annotations>\n")
