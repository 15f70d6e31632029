"""Label Studio JSON tasks, parsed like the other import formats (see `parsers`): untrusted
bytes in, checked shapes out, every problem named where it is."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from samapp.errors import ApplicationError
from samapp.ml.masks import polygons_to_mask
from samapp.services.datasets.parsers import (
    MAX_LABEL_NAME,
    Problems,
    is_int,
    is_number,
    json_load,
    polygon_checked,
)

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
        or not all(is_int(v) and 0 <= v < 256 for v in rle)
    ):
        raise ValueError("rle: expected a list of bytes")
    if int.from_bytes(bytes(rle[:4]), "big") != height * width * 4:
        raise ValueError(f"rle: its size is not the image's {width}x{height} RGBA")
    from label_studio_converter.brush import decode_rle  # imports pandas: only when used

    try:
        values = decode_rle(rle)
    except (ValueError, IndexError):
        raise ValueError("rle: truncated or malformed brush RLE") from None
    alpha: np.ndarray = values.reshape(height, width, 4)[:, :, 3] >= 128
    return alpha


def _label_of(value: dict[str, Any], kind: str) -> str:
    names = value.get(kind)
    if not isinstance(names, list) or not names or not isinstance(names[0], str):
        raise ValueError(f"value.{kind}: expected a list with the label name")
    name = names[0].strip()
    if not name or len(name) > MAX_LABEL_NAME:
        raise ValueError(f"value.{kind}: expected 1 to {MAX_LABEL_NAME} characters")
    return name


def _percent(value: Any) -> float:
    if not is_number(value):
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
    return label, polygons_to_mask([polygon_checked(ring, width, height)], height, width)
