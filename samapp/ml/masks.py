"""Binary masks: COCO compressed RLE, polygons, bounding boxes and areas.

Masks are (H, W) arrays, nonzero = foreground. RLEs are COCO compressed RLE dicts
``{"size": [H, W], "counts": str}`` (``counts`` as ``str`` so they are JSON-safe).

Polygons are flat COCO rings ``[x0, y0, x1, y1, ...]`` in continuous pixel coordinates
(pixel (x, y) is the square from (x, y) to (x + 1, y + 1)). ``polygons_to_mask`` reads them
as pycocotools does (every ring filled, the rings of one object united), ``mask_to_polygons``
traces pixel edges, so pycocotools paints each ring back pixel for pixel. Exterior rings have
a negative shoelace area in image coordinates (y down), holes a positive one; a COCO reader
cannot cut holes with rings, so writers keep masks with holes as RLE or bridge them (YOLO).
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
from pycocotools import mask as mask_utils

if TYPE_CHECKING:
    from pycocotools import _EncodedRLE

Rle = dict[str, Any]


def mask_to_rle(mask: np.ndarray) -> Rle:
    """(H, W) mask -> COCO compressed RLE with ``str`` counts."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": _text(rle["counts"])}


def _text(counts: str | bytes) -> str:
    return counts.decode() if isinstance(counts, bytes) else counts


def coco_rle(rle: Rle) -> "_EncodedRLE":
    """Our RLE as pycocotools takes it (``bytes`` counts)."""
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }


def rle_to_mask(rle: Rle) -> np.ndarray:
    """COCO compressed RLE (``str`` or ``bytes`` counts) -> (H, W) bool mask."""
    return mask_utils.decode(coco_rle(rle)).astype(bool)


def rle_area(rle: Rle) -> int:
    """Foreground pixel count of an RLE."""
    return int(mask_utils.area(coco_rle(rle)))


def rle_bbox(rle: Rle) -> list[float]:
    """COCO box [x, y, w, h] of an RLE; [0, 0, 0, 0] when empty."""
    return [float(v) for v in mask_utils.toBbox(coco_rle(rle))]


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
    return float(cv2.contourArea(np.asarray(points, np.float32).reshape(-1, 1, 2), oriented=True))


def is_hole(ring: Sequence[float] | np.ndarray) -> bool:
    """Whether a ring from ``mask_to_polygons`` / ``mask_to_centre_polygons`` is a hole."""
    return _signed_area(np.asarray(ring, dtype=np.float64).reshape(-1, 2)) > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(np.logical_or(a, b))
    return 1.0 if union == 0 else np.count_nonzero(np.logical_and(a, b)) / union


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The mask's bounding box padded by one background pixel, and the box's top-left
    corner less one (the offset of the padded crop), or None when the mask is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.pad(np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.uint8), 1)
    return crop, int(x0) - 1, int(y0) - 1


def _oriented(points: np.ndarray, hole: bool) -> np.ndarray:
    """Exteriors with a negative shoelace area (y down), holes with a positive one."""
    return points[::-1] if (_signed_area(points) > 0) != hole else points


def _pruned(points: np.ndarray) -> np.ndarray:
    """A closed ring without repeated and collinear vertices."""
    points = points[np.any(points != np.concatenate([points[-1:], points[:-1]]), axis=1)]
    if len(points) < 3:
        return points
    before = points - np.concatenate([points[-1:], points[:-1]])
    after = np.concatenate([before[1:], before[:1]])
    turn = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return points[turn != 0]


def _corner_rings(mask: np.ndarray) -> list[np.ndarray]:
    """Rings along the pixel edges (vertices on pixel corners, so a W x H block gives the
    rectangle (x, y)..(x + W, y + H)): the exterior of every part and the edge of every hole.

    Traced by OpenCV on the mask upscaled 2x: a boundary sub-pixel centre u + 1/2 lies a
    quarter pixel inside the foreground, and (u + 1) // 2 rounds it to the pixel edge."""
    cropped = _crop(mask)
    if cropped is None:
        return []
    crop, dx, dy = cropped
    doubled = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for contour, links in zip(contours, hierarchy[0] if hierarchy is not None else [], strict=True):
        points = _pruned((contour.reshape(-1, 2) + 1) // 2 + np.array([dx, dy]))
        if len(points) >= 3:
            rings.append(_oriented(points.astype(np.float64), hole=links[3] >= 0))
    return rings


def _centre_rings(mask: np.ndarray) -> list[np.ndarray]:
    """Rings through the centres of the boundary pixels (x + 1/2, y + 1/2), holes through
    the foreground pixels around them: OpenCV's contours in continuous coordinates."""
    cropped = _crop(mask)
    if cropped is None:
        return []
    crop, dx, dy = cropped
    # Every boundary pixel: a one-pixel line keeps its way there and back.
    contours, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    rings = []
    for contour, links in zip(contours, hierarchy[0] if hierarchy is not None else [], strict=True):
        points = contour.reshape(-1, 2) + np.array([dx + 0.5, dy + 0.5])
        if len(points) >= 3:
            rings.append(_oriented(points, hole=links[3] >= 0))
    return rings


def _simplified(rings: list[np.ndarray], tolerance: float) -> list[list[float]]:
    simplified = []
    for ring in rings:
        points = (
            cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), tolerance, True)
            .reshape(-1, 2)
            .astype(np.float64)
            if tolerance > 0
            else ring
        )
        if len(points) >= 3:
            simplified.append(points.reshape(-1).tolist())
    return simplified


# Epsilons under a quarter pixel (half of this, once halved) hardly simplify a pixel boundary:
# below it, tracing goes exact instead.
MIN_TOLERANCE = 0.5


def _traced(
    mask: np.ndarray,
    rings: list[np.ndarray],
    tolerance: float,
    min_iou: float,
    paint: Callable[[list[list[float]], int, int], np.ndarray],
) -> list[list[float]]:
    """Rings simplified at `tolerance`, halved until `paint` gives them `min_iou` with the
    mask, down to tolerance 0 (the exact rings)."""
    while True:
        simplified = _simplified(rings, tolerance)
        if tolerance == 0 or _iou(paint(simplified, *mask.shape), mask) >= min_iou:
            return simplified
        tolerance = tolerance / 2 if tolerance >= MIN_TOLERANCE else 0.0


def mask_to_polygons(
    mask: np.ndarray, tolerance: float = 1.0, min_iou: float = 0.99
) -> list[list[float]]:
    """(H, W) mask -> rings along its pixel edges (exteriors and holes of every part),
    simplified by Douglas-Peucker.

    Arguments:
      mask: (H, W) array, nonzero = foreground.
      tolerance: maximum distance in pixels between a ring and its simplification
        (``cv2.approxPolyDP`` epsilon); 0 keeps every corner of the pixel boundary.
      min_iou: the rings painted with the even-odd rule (``rings_to_mask``) keep at least
        this IoU with the mask. A shift within the tolerance can still cost much of a thin
        part, so where the rings fall short the tolerance is halved until they do not, down
        to tolerance 0 (exact rings: ``rings_to_mask`` gives the mask back).

    Returns:
      Flat rings ``[x0, y0, x1, y1, ...]`` with vertices on pixel corners (tolerance 0) in
      pycocotools' coordinates; ``is_hole`` tells the holes. An empty mask gives [].
    """
    return _traced(mask, _corner_rings(mask), tolerance, min_iou, rings_to_mask)


def mask_to_centre_polygons(
    mask: np.ndarray, tolerance: float = 1.0, min_iou: float = 0.99
) -> list[list[float]]:
    """(H, W) mask -> rings through the centres of its boundary pixels, at ``x + 0.5``,
    ``y + 0.5`` (the convention of ultralytics' ``polygon2mask``: see
    ``centre_polygons_to_mask``). Parts of one or two pixels have no ring and are dropped;
    otherwise as ``mask_to_polygons``."""
    return _traced(mask, _centre_rings(mask), tolerance, min_iou, centre_polygons_to_mask)


def _coco_rles(polygons: Sequence[Sequence[float]], height: int, width: int) -> list[Any]:
    # pycocotools takes float coordinates (its stub says int).
    rings = cast(list[list[int]], [list(map(float, p)) for p in polygons])
    return mask_utils.frPyObjects(rings, height, width)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons -> (height, width) bool mask, as pycocotools reads them (``frPyObjects``
    then ``merge``): each ring covers the pixels inside it whatever its winding, and the
    rings of one object combine by union (so a ring cannot cut a hole)."""
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    merged = mask_utils.merge(_coco_rles(polygons, height, width), intersect=False)
    return mask_utils.decode(merged).astype(bool)


def rings_to_mask(rings: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rings from ``mask_to_polygons`` -> mask, each ring painted as pycocotools paints it and
    the rings combined with the even-odd rule (holes and parts inside holes come back)."""
    mask = np.zeros((height, width), dtype=bool)
    if rings:
        for painted in mask_utils.decode(_coco_rles(rings, height, width)).transpose(2, 0, 1):
            mask ^= painted.astype(bool)
    return mask


def centre_polygons_to_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int
) -> np.ndarray:
    """Polygons in pixels -> mask, as ultralytics' ``polygon2mask`` paints a YOLO segment:
    coordinates truncated to integers, then ``cv2.fillPoly`` (even-odd, edges included)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    points = [np.asarray(p, dtype=np.float64).reshape(-1, 2).astype(np.int32) for p in polygons]
    if points:
        cv2.fillPoly(mask, points, 1)
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
    return {"size": [height, width], "counts": _text(compressed["counts"])}
