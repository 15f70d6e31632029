"""PNG masks: semantic and instance label maps with a palette, and their label maps; the
images, masks/ and dataset_meta.json are datumaro's `common_semantic_segmentation` layout.

images/<name>                      the image (unless include_images is false)
masks/<stem>.png                   8-bit palette PNG: 0 background, i = the i-th label
instance_masks/<stem>.png          8-bit palette PNG: 0 background, 1..n instances
                                   (16-bit grayscale PNG when an image has over 254)
dataset_meta.json                  datumaro's label map: index -> name, palette colors
instances.jsonl                    per image: its instances' label and category index
labelmap.json, labelmap.txt        index -> label name and color (txt: CVAT's format)
"""

import json
import re
import shutil
import tempfile

from samapp.models import Label
from samapp.services.datasets.common import (
    ExportRun,
    NameRegistry,
    class_palette,
    hex_rgb,
    instance_palette,
    stem_of,
)
from samapp.services.datasets.raster import (
    MAX_PALETTE_INDEX,
    check_label_count,
    gray16_png,
    paint,
    palette_png,
)


def dataset_meta(labels: list[Label]) -> dict[str, object]:
    """datumaro's dataset_meta.json: masks are read by their colors, which are distinct."""
    palette = class_palette(labels)
    names = ["background", *(label.name for label in labels)]
    return {
        "label_map": {str(index): name for index, name in enumerate(names)},
        "segmentation_colors": [palette[3 * i : 3 * i + 3] for i in range(len(names))],
        "background_label": "0",
    }


def label_map(labels: list[Label]) -> list[dict[str, object]]:
    palette = class_palette(labels)
    return [
        {"index": index, "name": name, "color": palette[3 * index : 3 * index + 3]}
        for index, name in enumerate(["background", *(label.name for label in labels)])
    ]


# CVAT's label map splits rows on line breaks and fields on ':': a label name may hold
# neither (labelmap.json keeps the exact names).
_MAP_UNSAFE = re.compile("[:\x00-\x1f\x7f\x85\u2028\u2029]")


def label_map_txt(labels: list[Label]) -> str:
    rows = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    rows += [
        "{}:{},{},{}::".format(_MAP_UNSAFE.sub("_", label.name), *hex_rgb(label.color))
        for label in labels
    ]
    return "\n".join(rows) + "\n"


def png_write(run: ExportRun) -> None:
    check_label_count(len(run.labels))
    class_of = {label.id: index for index, label in enumerate(run.labels, start=1)}
    name_of = {index: label.name for index, label in enumerate(run.labels, start=1)}
    palette, instance_colors = class_palette(run.labels), instance_palette()
    names = NameRegistry()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as instances_file:
        for item in run.items:
            name = names.name_for(item.image)
            stem = stem_of(name)
            if run.options.include_images:
                run.sink.write_image(f"images/{name}", item.image)
            classes, instances, instance_classes = paint(item, class_of)
            run.sink.write_bytes(f"masks/{stem}.png", palette_png(classes, palette), compress=False)
            instance_png = (
                palette_png(instances, instance_colors)
                if len(instance_classes) <= MAX_PALETTE_INDEX
                else gray16_png(instances)
            )
            run.sink.write_bytes(f"instance_masks/{stem}.png", instance_png, compress=False)
            row = {
                "file_name": name,
                "semantic": f"masks/{stem}.png",
                "instance": f"instance_masks/{stem}.png",
                "instances": [
                    {"id": number, "category": index, "label": name_of[index]}
                    for number, index in enumerate(instance_classes, start=1)
                ],
            }
            instances_file.write(json.dumps(row, ensure_ascii=False) + "\n")
            run.progress()
        instances_file.seek(0)
        with run.sink.open_text("instances.jsonl") as target:
            shutil.copyfileobj(instances_file, target)
    run.sink.write_text(
        "dataset_meta.json", json.dumps(dataset_meta(run.labels), indent=1, ensure_ascii=False)
    )
    run.sink.write_text(
        "labelmap.json", json.dumps(label_map(run.labels), indent=1, ensure_ascii=False)
    )
    run.sink.write_text("labelmap.txt", label_map_txt(run.labels))
