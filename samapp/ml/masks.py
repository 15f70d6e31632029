"""Binary masks: COCO compressed RLE, polygons, bounding boxes and areas.

Masks are (H, W) arrays, nonzero = foreground. RLEs are COCO compressed RLE dicts
``{"size": [H, W], "counts": str}`` (``counts`` as ``str`` so they are JSON-safe).

Polygons are flat COCO rings ``[x0, y0, x1, y1, ...]`` through the centres of the boundary
pixels (OpenCV's convention). A mask is the even-odd combination of its rings: exterior rings
have a negative shoelace area in image coordinates (y down), holes a positive one. Consumers
that ignore holes (COCO polygon viewers) see the union of the exteriors.
"""

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

Rle = dict[str, Any]


def mask_to_rle(mask: np.ndarray) -> Rle:
    """(H, W) mask -> COCO compressed RLE with ``str`` counts."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def _coco(rle: Rle) -> Rle:
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }


def rle_to_mask(rle: Rle) -> np.ndarray:
    """COCO compressed RLE (``str`` or ``bytes`` counts) -> (H, W) bool mask."""
    return mask_utils.decode(_coco(rle)).astype(bool)


def rle_area(rle: Rle) -> int:
    """Foreground pixel count of an RLE."""
    return int(mask_utils.area(_coco(rle)))


def rle_bbox(rle: Rle) -> list[float]:
    """COCO box [x, y, w, h] of an RLE; [0, 0, 0, 0] when empty."""
    return [float(v) for v in mask_utils.toBbox(_coco(rle))]


def mask_area(mask: np.ndarray) -> int:
    """Foreground pixel count."""
    return int(np.count_nonzero(mask))


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO box [x, y, w, h] (w, h count pixels, as pycocotools); [0, 0, 0, 0] when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = xs.min(), ys.min()
    return [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]


def _signed_area(points: np.ndarray) -> float:
    """Shoelace area of an (N, 2) ring; negative for exteriors, positive for holes."""
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def mask_to_polygons(
    mask: np.ndarray, tolerance: float = 1.0, min_iou: float = 0.9
) -> list[list[float]]:
    """(H, W) mask -> rings (exteriors and holes of every part), simplified by Douglas-Peucker.

    Arguments:
      mask: (H, W) array, nonzero = foreground.
      tolerance: maximum distance in pixels between a ring and its simplification
        (``cv2.approxPolyDP`` epsilon); 0 keeps every boundary pixel.
      min_iou: the rasterised rings (``polygons_to_mask``) keep at least this IoU with the
        mask. A shift within the tolerance can still cost much of a thin part (a 1 px skew of
        a hole's edge in a 4 px band loses 15%), so where the rings fall short the tolerance
        is halved until they do not, down to tolerance 0 (exact rings, which lose only the
        parts too small for a ring).

    Returns:
      Flat rings ``[x0, y0, x1, y1, ...]``. Rings with fewer than 3 vertices (parts or holes of
      one or two pixels, or thinner than the tolerance) are dropped; an empty mask gives [].
    """
    foreground = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(foreground, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    while True:
        rings = _simplified_rings(contours, tolerance)
        if tolerance == 0 or _iou(polygons_to_mask(rings, *mask.shape), mask) >= min_iou:
            return rings
        # Epsilons under a quarter pixel hardly simplify a pixel boundary: go exact instead.
        tolerance = tolerance / 2 if tolerance >= 0.5 else 0.0


def _simplified_rings(contours: Sequence[np.ndarray], tolerance: float) -> list[list[float]]:
    rings = []
    for contour in contours:
        ring = cv2.approxPolyDP(contour, tolerance, True) if tolerance > 0 else contour
        if len(ring) >= 3:
            rings.append(ring.reshape(-1).astype(float).tolist())
    return rings


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(np.logical_or(a, b))
    return 1.0 if union == 0 else np.count_nonzero(np.logical_and(a, b)) / union


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rings from ``mask_to_polygons`` (or any COCO polygons) -> (height, width) bool mask.

    Each exterior ring covers its interior and its boundary pixels; each hole removes its
    interior but not its boundary (those are the foreground pixels around the hole). Rings
    combine with the even-odd rule, so parts inside holes come back.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    for polygon in polygons:
        points = np.rint(np.asarray(polygon, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        ring = np.zeros_like(mask)
        cv2.fillPoly(ring, [points], 1)
        if _signed_area(points) > 0:
            cv2.polylines(ring, [points], isClosed=True, color=0)
        mask ^= ring
    return mask.astype(bool)


def counts_length_limit(height: int, width: int) -> int:
    """The most characters a compressed ``counts`` of an (height, width) mask can need.

    An encoder writes runs r0 >= 0 and r1.. >= 1 summing to N = height * width, so at most
    N + 1 runs; run i is written as v = r_i (i <= 2) or v = r_i - r_(i-2), in 5-bit groups, a
    group for every 5 bits of v's two's complement. |v| <= max(r_i, r_(i-2)), and a run r >= 1
    never takes more than r groups (r0 = 0 takes one), so the total is at most
    sum(groups(r_i)) + sum(groups(r_(i-2))) <= 2 * (N + 1)."""
    return 2 * (height * width + 1)


def _groups_limit(pixels: int) -> int:
    """The most 5-bit groups one number of a ``counts`` string needs: |v| <= pixels."""
    groups = 1
    while 1 << (5 * groups - 1) <= pixels:
        groups += 1
    return groups


def _counts_from_string(counts: str, height: int, width: int) -> np.ndarray:
    """Run lengths of a compressed RLE string (pycocotools' rleFrString), vectorised.

    Parsed here before pycocotools sees the string: its C decoder trusts the run lengths
    and would write past the mask for a string that does not add up to H * W. A number may
    have no more 5-bit groups than the mask's pixel count needs (at most 7), and every step
    is a pass over the string or its numbers, whose length `rle_validate` caps from the mask
    size beforehand: the work is linear in the length."""
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"counts string has an invalid character at {exc.start}") from exc
    chars = np.frombuffer(raw, dtype=np.uint8) - np.uint8(48)  # invalid ones wrap to >= 64
    invalid = np.flatnonzero(chars >= 64)
    if invalid.size:
        raise ValueError(f"counts string has an invalid character at {int(invalid[0])}")
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero((chars & 0x20) == 0)
    if ends.size == 0 or ends[-1] != chars.size - 1:
        raise ValueError("counts string ends inside a number")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > _groups_limit(height * width):
        raise ValueError(f"counts has a number too large for a {height}x{width} mask")
    # One pass per 5-bit group position (at most 7), over the numbers that have that group.
    values = (chars[starts] & 0x1F).astype(np.int64)
    for group in range(1, longest):
        has = np.flatnonzero(lengths > group)
        values[has] += (chars[starts[has] + group] & 0x1F).astype(np.int64) << (5 * group)
    # A set sign bit (0x10) in a number's last group makes it negative (two's complement).
    values -= np.where(chars[ends] & 0x10, np.left_shift(1, 5 * lengths), 0)
    # From the fourth number on, each is the difference to the run two places back.
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def _counts_from_list(counts: list[Any], height: int, width: int) -> np.ndarray:
    """Run lengths of an uncompressed RLE; a mask of N pixels has at most N + 1 runs."""
    if len(counts) > height * width + 1:
        raise ValueError(
            f"counts has {len(counts)} runs; a {height}x{width} mask has at most "
            f"{height * width + 1}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        raise ValueError("counts must be a string (compressed) or a list of integers")
    if any(not 0 <= v <= height * width for v in counts):
        raise ValueError("counts has a run length outside [0, height * width]")
    return np.asarray(counts, dtype=np.int64)


def rle_validate(rle: Any, *, shape: tuple[int, int] | None = None) -> Rle:
    """Check untrusted JSON as a COCO RLE; returns it compressed with ``str`` counts.

    Accepts compressed (``counts`` str) and uncompressed (``counts`` list of ints) RLE.
    ``shape``, when given, is the (height, width) the mask must have; it is checked before
    ``counts`` is read. Raises ValueError with the reason when the object is not a
    well-formed RLE."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise ValueError('expected {"size": [height, width], "counts": ...}')
    size = rle["size"]
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65_536 for v in size)
    ):
        raise ValueError("size must be [height, width] with positive integers")
    height, width = int(size[0]), int(size[1])
    if shape is not None and (height, width) != tuple(shape):
        raise ValueError(f"size {[height, width]} does not match the image {list(shape)}")
    counts = rle["counts"]
    if isinstance(counts, str):
        limit = counts_length_limit(height, width)
        if len(counts) > limit:
            raise ValueError(
                f"counts has {len(counts)} characters; "
                f"a {height}x{width} mask needs at most {limit}"
            )
        runs = _counts_from_string(counts, height, width)
    elif isinstance(counts, list):
        runs = _counts_from_list(counts, height, width)
    else:
        raise ValueError("counts must be a string (compressed) or a list of integers")
    if np.any(runs < 0):
        raise ValueError("counts has a negative run length")
    if np.any(runs > height * width):
        raise ValueError("counts has a run longer than the mask")
    total = int(runs.sum())
    if total != height * width:
        raise ValueError(f"run lengths add up to {total}, not height * width = {height * width}")
    if isinstance(counts, str):
        return {"size": [height, width], "counts": counts}
    compressed = mask_utils.frPyObjects(
        {"size": [height, width], "counts": runs.tolist()}, height, width
    )
    return {"size": [height, width], "counts": compressed["counts"].decode()}
