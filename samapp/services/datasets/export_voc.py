"""Pascal VOC segmentation:

  JPEGImages/<stem>.jpg              the image (JPEG files as they are, others re-encoded)
  SegmentationClass/<stem>.png       palette PNG: 0 background, i = the i-th label
  SegmentationObject/<stem>.png      palette PNG (VOC colors): 1..n instances
  ImageSets/Segmentation/{train,val}.txt   each image in exactly one (trainval is their
                                           concatenation: a reader such as datumaro takes
                                           every list as a subset, so it is not written)
  labelmap.txt                       label colors (CVAT's VOC label map format)

Masks carry no 255 "void" border (VOC's evaluation ignores it when present).
"""

import io

import PIL.Image

from samapp.errors import ApplicationError
from samapp.models import Image
from samapp.services.datasets.common import (
    ExportRun,
    NameRegistry,
    ZipSink,
    class_palette,
    instance_palette,
    split_of,
    stem_of,
)
from samapp.services.datasets.export_png import label_map_txt
from samapp.services.datasets.raster import (
    MAX_PALETTE_INDEX,
    check_label_count,
    paint,
    palette_png,
)


def _write_jpeg(sink: ZipSink, name: str, image: Image) -> None:
    if image.format.upper() == "JPEG":
        sink.write_image(name, image)
        return
    with image.file.open("rb") as source, PIL.Image.open(source) as picture:
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=95)
    sink.write_bytes(name, buffer.getvalue(), compress=False)


def voc_write(run: ExportRun) -> None:
    check_label_count(len(run.labels))
    class_of = {label.id: index for index, label in enumerate(run.labels, start=1)}
    palette, instance_colors = class_palette(run.labels), instance_palette()
    names = NameRegistry()
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for item in run.items:
        stem = stem_of(names.name_for(item.image))
        splits[split_of(item.image, run.options.val_split)].append(stem)
        if run.options.include_images:
            _write_jpeg(run.sink, f"JPEGImages/{stem}.jpg", item.image)
        classes, instances, instance_classes = paint(item, class_of)
        if len(instance_classes) > MAX_PALETTE_INDEX:
            raise ApplicationError(
                f"{item.image.original_name}: {len(instance_classes)} objects do not fit VOC's "
                f"8-bit object masks (at most {MAX_PALETTE_INDEX}); export PNG masks instead."
            )
        run.sink.write_bytes(
            f"SegmentationClass/{stem}.png", palette_png(classes, palette), compress=False
        )
        run.sink.write_bytes(
            f"SegmentationObject/{stem}.png",
            palette_png(instances, instance_colors),
            compress=False,
        )
        run.progress()
    for split in ("train", "val"):
        run.sink.write_text(
            f"ImageSets/Segmentation/{split}.txt", "".join(f"{s}\n" for s in splits[split])
        )
    run.sink.write_text("labelmap.txt", label_map_txt(run.labels))
