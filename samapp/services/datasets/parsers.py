"""Parsers for imported annotation files: untrusted bytes in, checked shapes out.

Pure functions (no database, no files): every problem becomes an ApplicationError that
names where it is, e.g. "annotations[12].segmentation: ...", "labels/a.txt:3: ...".
Paths found inside the files are returned as plain strings, to be matched against the
names of uploaded archive entries; they are never opened.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from samapp.errors import ApplicationError
from samapp.ml.masks import centre_polygons_to_mask, mask_to_rle, polygons_to_mask, rle_validate

MAX_REPORTED = 20
MAX_LABEL_NAME = 100
MAX_SIDE = 65_536


class Problems:
    """Collects located problems; `raise_if_any` reports the first ones and the count."""

    def __init__(self, file: str = "") -> None:
        self.prefix = f"{file}: " if file else ""
        self.items: list[str] = []
        self.count = 0

    def add(self, where: str, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append(self.prefix + (f"{where}: {message}" if where else message))

    def __bool__(self) -> bool:
        return self.count > 0

    def raise_if_any(self, title: str) -> None:
        if self.count:
            more = f" (and {self.count - 1} more)" if self.count > 1 else ""
            raise ApplicationError(
                f"{title}: {self.items[0]}{more}",
                {"problems": self.items, "problem_count": self.count},
            )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


# ---------------------------------------------------------------- COCO


@dataclass(frozen=True)
class CocoImage:
    index: int
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoCategory:
    id: int
    name: str
    color: str | None = None


@dataclass(frozen=True)
class CocoAnnotation:
    index: int
    image_id: int
    category_id: int
    segmentation: Any


@dataclass
class CocoDataset:
    images: list[CocoImage] = field(default_factory=list)
    categories: list[CocoCategory] = field(default_factory=list)
    annotations: list[CocoAnnotation] = field(default_factory=list)


def json_load(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})."
        ) from exc
    except json.JSONDecodeError as exc:
        raise ApplicationError(
            f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError as exc:
        raise ApplicationError(f"{where}: JSON nested too deeply.") from exc


def _list_field(
    document: dict[str, Any], key: str, problems: Problems, required: bool
) -> list[Any]:
    value = document.get(key, None if required else [])
    if not isinstance(value, list):
        problems.add(key, "missing" if value is None else "expected a list")
        return []
    return value


def coco_parse(*, data: bytes, where: str = "annotations.json") -> CocoDataset:
    """Check a COCO instances file's structure (segmentation shapes are checked later, when
    the image sizes are known: see `coco_segmentation_to_rle`)."""
    document = json_load(data, where)
    problems = Problems(where)
    if not isinstance(document, dict):
        raise ApplicationError(f"{where}: expected a JSON object with images and annotations.")
    images = _coco_images(document, problems)
    categories = _coco_categories(document, problems)
    annotations = _coco_annotations(
        document,
        problems,
        image_ids={image.id for image in images},
        category_ids={category.id for category in categories},
    )
    problems.raise_if_any("COCO import rejected")
    return CocoDataset(images, categories, annotations)


def _objects(
    document: dict[str, Any], key: str, problems: Problems, *, required: bool
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, "key[index]", row) of each object of the list `document[key]`; other rows are
    reported."""
    for index, row in enumerate(_list_field(document, key, problems, required=required)):
        at = f"{key}[{index}]"
        if isinstance(row, dict):
            yield index, at, row
        else:
            problems.add(at, "expected an object")


def _coco_images(document: dict[str, Any], problems: Problems) -> list[CocoImage]:
    images: list[CocoImage] = []
    image_ids: set[int] = set()
    for index, at, row in _objects(document, "images", problems, required=True):
        ok = True
        if not is_int(row.get("id")):
            problems.add(f"{at}.id", "expected an integer")
            ok = False
        elif row["id"] in image_ids:
            problems.add(f"{at}.id", f"duplicate image id {row['id']}")
            ok = False
        file_name = row.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip() or len(file_name) > 1000:
            problems.add(f"{at}.file_name", "expected a non-empty name")
            ok = False
        for key in ("width", "height"):
            if not is_int(row.get(key)) or not 0 < row[key] <= MAX_SIDE:
                problems.add(f"{at}.{key}", f"expected a positive integer, got {row.get(key)!r}")
                ok = False
        if ok:
            image_ids.add(row["id"])
            images.append(
                CocoImage(index, row["id"], file_name, row["width"], row["height"])  # type: ignore[arg-type]
            )
    return images


def _coco_categories(document: dict[str, Any], problems: Problems) -> list[CocoCategory]:
    categories: list[CocoCategory] = []
    category_ids: set[int] = set()
    names: set[str] = set()
    for _, at, row in _objects(document, "categories", problems, required=True):
        name = row.get("name")
        if not is_int(row.get("id")) or row["id"] in category_ids:
            problems.add(f"{at}.id", "expected a unique integer")
        elif not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_LABEL_NAME:
            problems.add(f"{at}.name", f"expected a name of 1 to {MAX_LABEL_NAME} characters")
        elif name.strip() in names:
            problems.add(f"{at}.name", f"duplicate category name {name!r}")
        else:
            color = row.get("color")
            category_ids.add(row["id"])
            names.add(name.strip())
            categories.append(
                CocoCategory(row["id"], name.strip(), color if isinstance(color, str) else None)
            )
    return categories


def _coco_annotations(
    document: dict[str, Any], problems: Problems, *, image_ids: set[int], category_ids: set[int]
) -> list[CocoAnnotation]:
    annotations: list[CocoAnnotation] = []
    for index, at, row in _objects(document, "annotations", problems, required=False):
        image_id, category_id = row.get("image_id"), row.get("category_id")
        if not is_int(image_id) or image_id not in image_ids:
            problems.add(f"{at}.image_id", f"no image with id {image_id!r}")
        elif not is_int(category_id) or category_id not in category_ids:
            problems.add(f"{at}.category_id", f"no category with id {category_id!r}")
        elif "segmentation" not in row:
            problems.add(f"{at}.segmentation", "missing")
        else:
            annotations.append(CocoAnnotation(index, image_id, category_id, row["segmentation"]))
    return annotations


def coco_segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """COCO polygons, compressed or uncompressed RLE -> our compressed RLE of (height, width).
    Raises ValueError with the reason."""
    if isinstance(segmentation, dict):
        return rle_validate(segmentation, shape=(height, width))
    if not isinstance(segmentation, list) or not segmentation:
        raise ValueError("expected a list of polygons or an RLE object")
    rings = []
    for number, ring in enumerate(segmentation):
        if not isinstance(ring, list) or not all(is_number(v) for v in ring):
            raise ValueError(f"polygon {number}: expected a flat list of numbers")
        if len(ring) < 6 or len(ring) % 2:
            raise ValueError(f"polygon {number}: expected an even count of at least 6 coordinates")
        points = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        if (
            (points < -1).any()
            or (points[:, 0] > width + 1).any()
            or (points[:, 1] > height + 1).any()
        ):
            raise ValueError(f"polygon {number}: coordinates outside the {width}x{height} image")
        rings.append(ring)
    mask = polygons_to_mask(rings, height, width)
    if not mask.any():
        raise ValueError("the polygons cover no pixel")
    return mask_to_rle(mask)


# ---------------------------------------------------------------- YOLO


def yolo_names_parse(*, data: bytes, where: str) -> list[str]:
    """Class names from an ultralytics data.yaml (`names` as a list or {index: name})."""
    try:
        document = yaml.safe_load(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise ApplicationError(f"{where}: not readable YAML: {str(exc)[:200]}") from exc
    if not isinstance(document, dict) or "names" not in document:
        raise ApplicationError(f"{where}: expected a mapping with 'names'.")
    names = document["names"]
    if isinstance(names, dict):
        keys = list(names)
        if not all(is_int(k) for k in keys) or sorted(keys) != list(range(len(keys))):
            raise ApplicationError(
                f"{where}: names: keys must be the class ids 0..{len(keys) - 1}."
            )
        names = [names[k] for k in range(len(keys))]
    return _names_check(names, f"{where}: names")


def yolo_classes_parse(*, data: bytes, where: str) -> list[str]:
    """Class names from classes.txt / obj.names: one per line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"{where}: not UTF-8 text.") from exc
    return _names_check([line.strip() for line in text.splitlines() if line.strip()], where)


def _names_check(names: Any, where: str) -> list[str]:
    if not isinstance(names, list) or not names:
        raise ApplicationError(f"{where}: expected a non-empty list of class names.")
    problems = Problems()
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str | int) or isinstance(name, bool):
            problems.add(f"{where}[{index}]", "expected a name")
            continue
        text = str(name).strip()
        if not text or len(text) > MAX_LABEL_NAME:
            problems.add(f"{where}[{index}]", f"expected 1 to {MAX_LABEL_NAME} characters")
        elif text in seen:
            problems.add(f"{where}[{index}]", f"duplicate name {text!r}")
        seen.add(text)
    problems.raise_if_any("class names rejected")
    return [str(name).strip() for name in names]


@dataclass(frozen=True)
class YoloShape:
    line: int
    class_id: int
    points: list[float]  # normalized x, y pairs


def yolo_labels_parse(
    *, data: bytes, where: str, class_count: int, problems: Problems
) -> list[YoloShape]:
    """One YOLO label file: `class x1 y1 x2 y2 x3 y3 ...` (segment) or `class cx cy w h`
    (box) per line, coordinates normalized into [0, 1]. Problems are added to `problems`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.add(where, "not UTF-8 text")
        return []
    shapes = []
    for number, line in enumerate(text.splitlines(), start=1):
        at = f"{where}:{number}"
        tokens = line.split()
        if not tokens:
            continue
        try:
            class_id = int(tokens[0])
        except ValueError:
            problems.add(at, f"class id {tokens[0][:20]!r} is not an integer")
            continue
        if not 0 <= class_id < class_count:
            problems.add(at, f"class id {class_id} is outside 0..{class_count - 1}")
            continue
        try:
            values = [float(token) for token in tokens[1:]]
        except ValueError:
            problems.add(at, "coordinates must be numbers")
            continue
        if not all(0.0 <= value <= 1.0 for value in values):  # also rejects nan
            problems.add(at, "coordinates must be normalized into [0, 1]")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            values = [x0, y0, x1, y0, x1, y1, x0, y1]
        elif len(values) < 6 or len(values) % 2:
            problems.add(at, "expected a box (4 numbers) or at least 3 points (x y pairs)")
            continue
        shapes.append(YoloShape(number, class_id, values))
    return shapes


def yolo_shape_to_rle(shape: YoloShape, height: int, width: int) -> dict[str, Any]:
    """Normalized polygon -> RLE, painted as ultralytics' `polygon2mask` paints it."""
    points = np.asarray(shape.points, dtype=np.float64) * np.tile(
        [width, height], len(shape.points) // 2
    )
    mask = centre_polygons_to_mask([points], height, width)
    if not mask.any():
        raise ValueError("the polygon covers no pixel")
    return mask_to_rle(mask)


def polygon_checked(values: list[float], width: int, height: int) -> list[float]:
    points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if (
        not np.isfinite(points).all()
        or (points < -1).any()
        or (points > [width + 1, height + 1]).any()
    ):
        raise ValueError(f"coordinates outside the {width}x{height} image")
    return values
