"""CVAT for images 1.1 XML, parsed like the other import formats (see `parsers`): untrusted
bytes in, checked shapes out, every problem named where it is."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samapp.errors import ApplicationError
from samapp.ml.masks import mask_to_rle, polygons_to_mask
from samapp.services.datasets.parsers import MAX_LABEL_NAME, MAX_SIDE, Problems, polygon_checked

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
    return polygon_checked(values, width, height)


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
        box = polygon_checked([x0, y0, x1, y0, x1, y1, x0, y1], width, height)
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
    for element in root.iterfind("meta/*/labels/label"):
        name = (element.findtext("name") or "").strip()
        if name and len(name) <= MAX_LABEL_NAME and name not in dict(dataset.labels):
            dataset.labels.append((name, (element.findtext("color") or "").strip() or None))
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
