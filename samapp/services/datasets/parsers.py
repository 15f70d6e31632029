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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


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
        if not _is_int(row.get("id")):
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
            if not _is_int(row.get(key)) or not 0 < row[key] <= MAX_SIDE:
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
        if not _is_int(row.get("id")) or row["id"] in category_ids:
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
        if not _is_int(image_id) or image_id not in image_ids:
            problems.add(f"{at}.image_id", f"no image with id {image_id!r}")
        elif not _is_int(category_id) or category_id not in category_ids:
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
        if not isinstance(ring, list) or not all(_is_number(v) for v in ring):
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
        if not all(_is_int(k) for k in keys) or sorted(keys) != list(range(len(keys))):
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


# ---------------------------------------------------------------- CVAT for images 1.1

CVAT_SHAPES = ("polygon", "mask", "box")


@dataclass(frozen=True)
class CvatObject:
    label: str
    shapes: list[tuple[str, Any]]  # (where, XML element): a CVAT group is one object


@dataclass(frozen=True)
class CvatImage:
    index: int
    name: str
    width: int
    height: int
    objects: list[CvatObject]


@dataclass
class CvatDataset:
    labels: list[tuple[str, str | None]] = field(default_factory=list)  # (name, color)
    images: list[CvatImage] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)  # unsupported shape -> count


def _cvat_int(element: Any, key: str, low: int, high: int) -> int:
    text = element.get(key)
    if text is None or not text.strip().lstrip("-").isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{key}: expected an integer from {low} to {high}, got {text!r}")
    return int(text)


def _cvat_points(text: str | None, width: int, height: int) -> list[float]:
    try:
        pairs = [pair.split(",") for pair in (text or "").split(";")]
        values = [float(v) for pair in pairs for v in pair if len(pair) == 2]
    except ValueError:
        raise ValueError("points: expected 'x,y;x,y;...' numbers") from None
    if len(values) != 2 * len(pairs) or len(pairs) < 3:
        raise ValueError("points: expected at least 3 'x,y' pairs")
    return _polygon_checked(values, width, height)


def _polygon_checked(values: list[float], width: int, height: int) -> list[float]:
    points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if (
        not np.isfinite(points).all()
        or (points < -1).any()
        or (points > [width + 1, height + 1]).any()
    ):
        raise ValueError(f"coordinates outside the {width}x{height} image")
    return values


def cvat_mask_decode(counts: str | None, width: int, height: int) -> np.ndarray:
    """CVAT's mask RLE (run lengths over a width x height box, row by row, background
    first) -> (height, width) bool array. Raises ValueError.

    A box of N pixels has at most N + 1 runs of at most N each, written as "r, r, ...": the
    text is capped from that before it is split, and every run is checked against N before
    anything is summed or painted (large runs would wrap a 64-bit sum back to N)."""
    pixels = width * height
    text = counts or ""
    if len(text) > (pixels + 1) * (len(str(pixels)) + 2):
        raise ValueError(f"rle: longer than any mask of a {width} x {height} box")
    try:
        runs = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError("rle: expected comma-separated integers") from None
    if any(not 0 <= run <= pixels for run in runs) or sum(runs) != pixels:
        raise ValueError(f"rle: run lengths must be >= 0 and add up to {width} x {height}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, np.asarray(runs, dtype=np.int64)).reshape(height, width)


def _cvat_shape(element: Any, width: int, height: int) -> np.ndarray:
    if element.tag == "polygon":
        return polygons_to_mask([_cvat_points(element.get("points"), width, height)], height, width)
    if element.tag == "box":
        try:
            x0, y0, x1, y1 = (float(element.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr"))
        except ValueError:
            raise ValueError("xtl, ytl, xbr, ybr: expected numbers") from None
        box = _polygon_checked([x0, y0, x1, y0, x1, y1, x0, y1], width, height)
        return polygons_to_mask([box], height, width)
    left, top = _cvat_int(element, "left", 0, width - 1), _cvat_int(element, "top", 0, height - 1)
    box_width = _cvat_int(element, "width", 1, width - left)
    box_height = _cvat_int(element, "height", 1, height - top)
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + box_height, left : left + box_width] = cvat_mask_decode(
        element.get("rle"), box_width, box_height
    )
    return mask


def cvat_object_to_rle(
    item: CvatObject, height: int, width: int, problems: Problems
) -> dict[str, Any] | None:
    """One object's shapes painted on a (height, width) image and united, as RLE; None
    (problems added) when a shape is malformed or the object covers no pixel."""
    mask = np.zeros((height, width), dtype=bool)
    for where, shape in item.shapes:
        try:
            mask |= _cvat_shape(shape, width, height)
        except ValueError as exc:
            problems.add(where, str(exc))
            return None
    return mask_to_rle(mask) if mask.any() else None


def cvat_parse(*, data: bytes, where: str = "annotations.xml") -> CvatDataset:
    """A CVAT for images 1.1 XML file: labels, images and their polygons, masks and boxes
    grouped into objects (the shapes of one group_id and label); other shapes are counted.
    Shapes are checked and painted by `cvat_object_to_rle` once the image size is known."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise ApplicationError(f"{where}: not a readable XML file: {str(exc)[:200]}") from exc
    if root.tag != "annotations":
        raise ApplicationError(f"{where}: expected an <annotations> root element.")
    problems = Problems(where)
    dataset = CvatDataset()
    for label in root.iterfind("meta/*/labels/label"):
        name = (label.findtext("name") or "").strip()
        if name and len(name) <= MAX_LABEL_NAME and name not in dict(dataset.labels):
            dataset.labels.append((name, (label.findtext("color") or "").strip() or None))
    known = dict(dataset.labels)
    for index, element in enumerate(root.iterfind("image")):
        at = f"image[{index}]"
        try:
            width, height = (
                _cvat_int(element, "width", 1, MAX_SIDE),
                _cvat_int(element, "height", 1, MAX_SIDE),
            )
        except ValueError as exc:
            problems.add(at, str(exc))
            continue
        name = element.get("name") or ""
        if not name.strip() or len(name) > 1000:
            problems.add(f"{at}.name", "expected a non-empty name")
            continue
        objects: dict[tuple[str, str], CvatObject] = {}
        for number, shape in enumerate(element):
            if shape.tag not in CVAT_SHAPES:
                dataset.ignored[shape.tag] = dataset.ignored.get(shape.tag, 0) + 1
                continue
            label = (shape.get("label") or "").strip()
            if not label or len(label) > MAX_LABEL_NAME:
                problems.add(f"{at}.{shape.tag}[{number}].label", "expected a label name")
                continue
            group = shape.get("group_id", "0")
            key = (label, group if group not in ("", "0") else f"shape {number}")
            objects.setdefault(key, CvatObject(label, [])).shapes.append(
                (f"{at}.{shape.tag}[{number}]", shape)
            )
            if label not in known:
                known[label] = None
                dataset.labels.append((label, None))
        dataset.images.append(CvatImage(index, name, width, height, list(objects.values())))
    problems.raise_if_any("CVAT import rejected")
    return dataset


# ---------------------------------------------------------------- Label Studio JSON

LS_TYPES = ("brushlabels", "polygonlabels", "rectanglelabels")


@dataclass(frozen=True)
class LsTask:
    index: int
    image: str  # data.image: a URL or path; only its name is matched
    results: list[tuple[str, dict[str, Any]]]  # (where, result)


def label_studio_parse(*, data: bytes, where: str = "tasks.json") -> list[LsTask]:
    """Label Studio's JSON export: a list of tasks, each with data.image and annotations
    whose results are brush, polygon or rectangle labels (others are left out)."""
    document = json_load(data, where)
    if not isinstance(document, list):
        raise ApplicationError(f"{where}: expected a JSON list of Label Studio tasks.")
    problems = Problems(where)
    tasks = []
    for index, task in enumerate(document):
        at = f"[{index}]"
        source = task.get("data") if isinstance(task, dict) else None
        image = source.get("image") if isinstance(source, dict) else None
        if not isinstance(image, str) or not image.strip() or len(image) > 2000:
            problems.add(f"{at}.data.image", "expected the image's URL or path")
            continue
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            problems.add(f"{at}.annotations", "expected a list")
            continue
        results = []
        for number, annotation in enumerate(annotations):
            if not isinstance(annotation, dict) or annotation.get("was_cancelled") is True:
                continue
            rows = annotation.get("result", [])
            if not isinstance(rows, list):
                problems.add(f"{at}.annotations[{number}].result", "expected a list")
                continue
            results += [
                (f"{at}.annotations[{number}].result[{n}]", row)
                for n, row in enumerate(rows)
                if isinstance(row, dict) and row.get("type") in LS_TYPES
            ]
        tasks.append(LsTask(index, image.strip(), results))
    problems.raise_if_any("Label Studio import rejected")
    return tasks


def brush_decode(rle: Any, height: int, width: int) -> np.ndarray:
    """Label Studio brush RLE (RGBA bytes of the image) -> mask (alpha >= 128). The value
    count in its 32-bit header must be height * width * 4 before anything is decoded."""
    if (
        not isinstance(rle, list)
        or len(rle) < 4
        or not all(_is_int(v) and 0 <= v < 256 for v in rle)
    ):
        raise ValueError("rle: expected a list of bytes")
    if int.from_bytes(bytes(rle[:4]), "big") != height * width * 4:
        raise ValueError(f"rle: its size is not the image's {width}x{height} RGBA")
    from label_studio_converter.brush import decode_rle  # imports pandas: only when used

    try:
        values = decode_rle(rle)
    except (ValueError, IndexError):
        raise ValueError("rle: truncated or malformed brush RLE") from None
    return values.reshape(height, width, 4)[:, :, 3] >= 128


def _label_of(value: dict[str, Any], kind: str) -> str:
    names = value.get(kind)
    if not isinstance(names, list) or not names or not isinstance(names[0], str):
        raise ValueError(f"value.{kind}: expected a list with the label name")
    name = names[0].strip()
    if not name or len(name) > MAX_LABEL_NAME:
        raise ValueError(f"value.{kind}: expected 1 to {MAX_LABEL_NAME} characters")
    return name


def _percent(value: Any) -> float:
    if not _is_number(value):
        raise ValueError("expected numbers in percent of the image size")
    return float(value)


def ls_result_to_mask(result: dict[str, Any], height: int, width: int) -> tuple[str, np.ndarray]:
    """(label, mask) of one Label Studio result. Raises ValueError."""
    kind, value = result["type"], result.get("value")
    if not isinstance(value, dict):
        raise ValueError("value: expected an object")
    label = _label_of(value, kind)
    if kind == "brushlabels":
        if value.get("format", "rle") != "rle":
            raise ValueError("value.format: only 'rle' brushes are read")
        return label, brush_decode(value.get("rle"), height, width)
    if kind == "polygonlabels":
        points = value.get("points")
        if (
            not isinstance(points, list)
            or len(points) < 3
            or not all(isinstance(p, list) and len(p) == 2 for p in points)
        ):
            raise ValueError("value.points: expected at least 3 [x, y] pairs")
        ring = [
            _percent(v) * size / 100
            for p in points
            for v, size in zip(p, (width, height), strict=True)
        ]
    else:
        if _percent(value.get("rotation", 0)) != 0:
            raise ValueError("value.rotation: rotated rectangles are not read")
        x, y, w, h = (_percent(value.get(k)) for k in ("x", "y", "width", "height"))
        x0, y0, x1, y1 = (
            x * width / 100,
            y * height / 100,
            (x + w) * width / 100,
            (y + h) * height / 100,
        )
        ring = [x0, y0, x1, y0, x1, y1, x0, y1]
    return label, polygons_to_mask([_polygon_checked(ring, width, height)], height, width)
