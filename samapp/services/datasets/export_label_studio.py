"""Label Studio JSON: tasks.json (a list of tasks with their annotations) + images/<name> +
label_config.xml (the labeling config the results refer to).

Each object is one result: `brushlabels` with Label Studio's brush RLE (RGBA bytes, the
mask in every channel, 255 inside; encoded by label-studio-converter's own codec), or with
`mask_format` "polygons" a `polygonlabels` result with points in percent of the image size,
for masks of one part without holes (others stay brushes; `holes` "fill" writes a holed
mask's outline instead).
"""

import json
import shutil
import tempfile
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from samapp.ml.masks import rle_to_mask
from samapp.models import Annotation, Image, Label
from samapp.services.datasets.common import (
    ExportOptions,
    ExportRun,
    NameRegistry,
    polygon_rings,
)

TASKS_NAME = "tasks.json"
CONFIG_NAME = "label_config.xml"
BRUSH, POLYGON, IMAGE = "brush", "polygon", "image"


def brush_encode(mask: np.ndarray) -> list[int]:
    from label_studio_converter.brush import mask2rle  # imports pandas: only when used

    return list(mask2rle(mask.astype(np.uint8) * 255))


def label_config(labels: list[Label]) -> str:
    rows = "".join(
        f"    <Label value={quoteattr(label.name)} background={quoteattr(label.color)}/>\n"
        for label in labels
    )
    return (
        f'<View>\n  <Image name="{IMAGE}" value="$image"/>\n'
        f'  <BrushLabels name="{BRUSH}" toName="{IMAGE}">\n{rows}  </BrushLabels>\n'
        f'  <PolygonLabels name="{POLYGON}" toName="{IMAGE}">\n{rows}  </PolygonLabels>\n'
        "</View>\n"
    )


def ls_result(
    annotation: Annotation, label: str, image: Image, options: ExportOptions
) -> dict[str, Any]:
    base = {
        "id": f"a{annotation.id}",
        "to_name": IMAGE,
        "original_width": image.width,
        "original_height": image.height,
        "image_rotation": 0,
    }
    if options.mask_format == "polygons":
        rings = polygon_rings(annotation.rle, options)
        if len(rings) == 1:
            ring = rings[0]
            points = [
                [100 * x / image.width, 100 * y / image.height]
                for x, y in zip(ring[::2], ring[1::2], strict=True)
            ]
            value = {"points": points, "closed": True, "polygonlabels": [label]}
            return {**base, "from_name": POLYGON, "type": "polygonlabels", "value": value}
    value = {
        "format": "rle",
        "rle": brush_encode(rle_to_mask(annotation.rle)),
        "brushlabels": [label],
    }
    return {**base, "from_name": BRUSH, "type": "brushlabels", "value": value}


def label_studio_write(run: ExportRun) -> None:
    name_of = {label.id: label.name for label in run.labels}
    names = NameRegistry()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as tasks:
        for number, item in enumerate(run.items, start=1):
            image = item.image
            file_name = names.name_for(image)
            if run.options.include_images:
                run.sink.write_image(f"images/{file_name}", image)
            results = [
                ls_result(annotation, name_of[annotation.label_id or 0], image, run.options)
                for annotation in item.annotations
                if annotation.label_id in name_of
            ]
            task = {
                "id": number,
                "data": {IMAGE: f"images/{file_name}"},
                "annotations": [{"id": number, "result": results}] if results else [],
            }
            tasks.write(("," if number > 1 else "") + "\n" + json.dumps(task, ensure_ascii=False))
            run.progress()
        with run.sink.open_text(TASKS_NAME) as target:
            target.write("[")
            tasks.seek(0)
            shutil.copyfileobj(tasks, target)
            target.write("\n]\n")
    run.sink.write_text(CONFIG_NAME, label_config(run.labels))
