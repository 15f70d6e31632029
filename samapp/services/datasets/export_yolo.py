"""YOLO segmentation (ultralytics): images/<split>/, labels/<split>/<stem>.txt, data.yaml.

Each label line is `class x1 y1 x2 y2 ...`: a class index in 0..nc-1 and at least three
points normalized by the image width and height into [0, 1]. YOLO has one polygon per
instance, painted by ultralytics' `polygon2mask` (coordinates truncated to pixels, then
`cv2.fillPoly`: even-odd, edges included). So the vertices are the centres of the boundary
pixels, (x + 0.5) / W, and the parts and holes of a mask are joined into one polygon by
zero-width bridges between their nearest vertices, as ultralytics' own COCO converter joins
parts: even-odd filling cuts the holes back out. A bridge between two parts paints the
one-pixel line it crosses.
"""

import numpy as np
import yaml

from samapp.ml.masks import is_hole, mask_to_centre_polygons, rle_to_mask
from samapp.models import Annotation, Image, Label
from samapp.services.datasets.common import (
    ExportRun,
    NameRegistry,
    split_of,
    stem_of,
)


def _nearest_pair(merged: np.ndarray, ring: np.ndarray, chunk: int = 256) -> tuple[int, int]:
    """Indices (i, j) of the closest merged[i], ring[j], in chunks of the ring (memory
    bounded by chunk * len(merged))."""
    best, pair = np.inf, (0, 0)
    for start in range(0, len(ring), chunk):
        distances = ((merged[:, None, :] - ring[None, start : start + chunk, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[i, j] < best:
            best, pair = float(distances[i, j]), (int(i), start + int(j))
    return pair


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join (N, 2) rings into one: each next ring is entered and left through the pair of
    vertices nearest to the polygon built so far."""
    merged = parts[0]
    for ring in parts[1:]:
        i, j = _nearest_pair(merged, ring)
        rotated = np.roll(ring, -j, axis=0)
        merged = np.concatenate(
            [merged[: i + 1], rotated, rotated[:1], merged[i : i + 1], merged[i + 1 :]]
        )
    return merged


def yolo_polygon(annotation: Annotation, tolerance: float) -> np.ndarray | None:
    """The instance as one (N, 2) polygon in pixels, or None when no ring survives."""
    rings = [
        np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        for ring in mask_to_centre_polygons(rle_to_mask(annotation.rle), tolerance)
    ]
    if not rings:
        return None
    exteriors = sorted((r for r in rings if not is_hole(r.reshape(-1))), key=len, reverse=True)
    holes = [r for r in rings if is_hole(r.reshape(-1))]
    return merge_parts(exteriors + holes)


def yolo_line(class_index: int, polygon: np.ndarray, image: Image) -> str:
    normalized = np.clip(polygon / np.array([image.width, image.height], dtype=np.float64), 0, 1)
    return f"{class_index} " + " ".join(f"{value:.6f}" for value in normalized.reshape(-1))


def yolo_data_yaml(labels: list[Label], has_val: bool) -> str:
    data = {
        "train": "images/train",
        "val": "images/val" if has_val else "images/train",
        "nc": len(labels),
        "names": {index: label.name for index, label in enumerate(labels)},
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def yolo_write(run: ExportRun) -> None:
    class_of = {label.id: index for index, label in enumerate(run.labels)}
    names = NameRegistry()
    has_val = False
    for item in run.items:
        image = item.image
        name = names.name_for(image)
        split = split_of(image, run.options.val_split)
        has_val = has_val or split == "val"
        if run.options.include_images:
            run.sink.write_image(f"images/{split}/{name}", image)
        lines = []
        for annotation in item.annotations:
            if annotation.label_id not in class_of:
                continue
            polygon = yolo_polygon(annotation, run.options.tolerance)
            if polygon is not None and len(polygon) >= 3:
                lines.append(yolo_line(class_of[annotation.label_id or 0], polygon, image))
        run.sink.write_text(f"labels/{split}/{stem_of(name)}.txt", "".join(f"{x}\n" for x in lines))
        run.progress()
    run.sink.write_text("data.yaml", yolo_data_yaml(run.labels, has_val))
