"""Mask utilities: property tests with hypothesis, cross-checked against pycocotools."""

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from samapp.ml.masks import (
    centre_polygons_to_mask,
    mask_area,
    mask_bbox,
    mask_to_centre_polygons,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    rings_to_mask,
    rle_area,
    rle_bbox,
    rle_to_mask,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools, numpy 2

MIN_IOU_SIMPLIFIED = 0.99  # mask_to_polygons' default min_iou

any_mask = st.integers(1, 40).flatmap(
    lambda h: st.integers(1, 40).flatmap(lambda w: arrays(np.bool_, (h, w)))
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@settings(max_examples=200, deadline=None)
@given(any_mask)
def test_rle_round_trip_is_exact_and_json_safe(mask):
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str)
    decoded = rle_to_mask(json.loads(json.dumps(rle)))
    assert decoded.dtype == bool
    assert np.array_equal(decoded, mask)


@settings(max_examples=200, deadline=None)
@given(any_mask)
def test_area_and_bbox_agree_with_pycocotools(mask):
    coco = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle = mask_to_rle(mask)
    assert mask_area(mask) == rle_area(rle) == int(mask_utils.area(coco))
    assert mask_bbox(mask) == rle_bbox(rle) == mask_utils.toBbox(coco).tolist()


@st.composite
def shapes(draw):
    """Masks of 1-3 parts (ellipses and rectangles >= 10 px), some with a hole, some with an
    island inside the hole; parts are kept apart so ring counts are known."""
    h, w = 96, 160
    mask = np.zeros((h, w), np.uint8)
    parts = draw(st.integers(1, 3))
    holes = 0
    for i in range(parts):
        x0 = 4 + i * 52
        cx, cy = x0 + 22, 48
        rx = draw(st.integers(10, 22))
        if draw(st.booleans()):  # any rotation stays within radius 22
            ry = draw(st.integers(10, 22))
            cv2.ellipse(mask, (cx, cy), (rx, ry), draw(st.integers(0, 180)), 0, 360, 1, -1)
        else:
            ry = draw(st.integers(10, 40))
            cv2.rectangle(mask, (cx - rx, cy - ry), (cx + rx, cy + ry), 1, -1)
        if draw(st.booleans()):
            cv2.rectangle(mask, (cx - 5, cy - 5), (cx + 5, cy + 5), 0, -1)
            holes += 1
            if draw(st.booleans()):
                cv2.rectangle(mask, (cx - 2, cy - 2), (cx + 2, cy + 2), 1, -1)
                parts += 1
    return mask.astype(bool), parts, holes


@pytest.mark.parametrize(
    ("trace", "paint"),
    [
        (mask_to_polygons, rings_to_mask),  # pixel edges, painted by pycocotools, even-odd
        (mask_to_centre_polygons, centre_polygons_to_mask),  # as ultralytics paints them
    ],
)
@settings(max_examples=60, deadline=None)
@given(shape=shapes())
def test_polygons_round_trip_exactly_without_simplification(trace, paint, shape):
    mask, parts, holes = shape
    rings = trace(mask, tolerance=0)
    assert len(rings) == parts + holes
    assert np.array_equal(paint(rings, *mask.shape), mask)


@settings(max_examples=60, deadline=None)
@given(shapes(), st.sampled_from([0.5, 1.0]))
def test_simplified_polygons_keep_iou_high(shape, tolerance):
    mask, parts, holes = shape
    rings = mask_to_polygons(mask, tolerance=tolerance)
    assert len(rings) == parts + holes
    assert all(len(r) % 2 == 0 and len(r) >= 6 for r in rings)
    assert _iou(rings_to_mask(rings, *mask.shape), mask) >= MIN_IOU_SIMPLIFIED
    raw = sum(len(r) for r in mask_to_polygons(mask, tolerance=0))
    assert sum(len(r) for r in rings) <= raw  # a rectangle has no vertex to spare


def test_simplification_keeps_thin_bands_around_holes():
    # Found by hypothesis: at tolerance 1 Douglas-Peucker skews the hole of a radius-10 disk
    # into a quadrilateral 1 px off its edges, IoU 0.85 on the ~4 px band; the rings must
    # fall back to a finer tolerance instead.
    mask = np.zeros((96, 56), np.uint8)
    cv2.ellipse(mask, (26, 48), (10, 10), 0, 0, 360, 1, -1)
    cv2.rectangle(mask, (21, 43), (31, 53), 0, -1)
    mask = mask.astype(bool)
    rings = mask_to_polygons(mask, tolerance=1.0)
    assert len(rings) == 2
    assert _iou(rings_to_mask(rings, *mask.shape), mask) >= MIN_IOU_SIMPLIFIED
    assert sum(len(r) for r in rings) < sum(len(r) for r in mask_to_polygons(mask, tolerance=0))


@settings(max_examples=60, deadline=None)
@given(any_mask, st.sampled_from([0.8, 0.95]))
def test_simplification_keeps_min_iou_where_exact_rings_can(mask, min_iou):
    rings = mask_to_polygons(mask, tolerance=2.0, min_iou=min_iou)
    # Exact rings still drop one- and two-pixel parts, so they bound what can be kept.
    exact = _iou(rings_to_mask(mask_to_polygons(mask, tolerance=0), *mask.shape), mask)
    assert _iou(rings_to_mask(rings, *mask.shape), mask) >= min(min_iou, exact)


def test_holes_are_the_positively_oriented_rings():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    mask[15:25, 15:25] = False
    exterior, hole = sorted(mask_to_polygons(mask), key=len, reverse=True)
    signed = [
        cv2.contourArea(np.array(r, np.float32).reshape(-1, 2), oriented=True)
        for r in (exterior, hole)
    ]
    assert signed[0] < 0 < signed[1]
    assert np.array_equal(polygons_to_mask([exterior], 40, 40), np.pad(np.ones((30, 30), bool), 5))


def test_tiny_parts_keep_their_pixel_squares():
    mask = np.zeros((20, 20), bool)
    mask[2, 2] = True  # one pixel: its four corners
    mask[10, 5:7] = True
    mask[12:18, 12:18] = True
    mask[18, 18] = True  # touches the square at a corner only
    rings = mask_to_polygons(mask, tolerance=0)
    assert [2.0, 2.0] in [r[i : i + 2] for r in rings for i in range(0, len(r), 2)]
    assert np.array_equal(rings_to_mask(rings, 20, 20), mask)


@pytest.mark.parametrize(("width", "height"), [(80, 80), (1, 1), (3, 17), (120, 40)])
def test_rectangles_keep_their_size_through_pycocotools(width, height):
    mask = np.zeros((130, 140), bool)
    mask[5 : 5 + height, 7 : 7 + width] = True
    (ring,) = mask_to_polygons(mask, tolerance=0)
    assert sorted(zip(ring[::2], ring[1::2], strict=True)) == [
        (7, 5),
        (7, 5 + height),
        (7 + width, 5),
        (7 + width, 5 + height),
    ]
    painted = mask_utils.decode(mask_utils.frPyObjects([ring], 130, 140))[:, :, 0]
    assert np.array_equal(painted.astype(bool), mask)


@pytest.mark.parametrize("radius", [1, 2, 3, 4, 6, 10, 25])
def test_small_discs_keep_iou_at_tolerance_0_and_1(radius):
    yy, xx = np.mgrid[:64, :64]
    disc = (xx - 31) ** 2 + (yy - 30) ** 2 <= radius * radius
    assert np.array_equal(polygons_to_mask(mask_to_polygons(disc, tolerance=0), 64, 64), disc)
    simplified = polygons_to_mask(mask_to_polygons(disc, tolerance=1.0), 64, 64)
    assert _iou(simplified, disc) >= (0.99 if disc.sum() >= 20 else 0.97)


def test_polygons_read_as_pycocotools_whatever_the_winding():
    triangle = [10, 10, 60, 10, 10, 50]
    reverse = [10, 50, 60, 10, 10, 10]
    coco = mask_utils.decode(mask_utils.frPyObjects([triangle], 64, 64))[:, :, 0]
    assert coco.sum() == 1000
    assert np.array_equal(polygons_to_mask([triangle], 64, 64), coco.astype(bool))
    assert np.array_equal(polygons_to_mask([reverse], 64, 64), coco.astype(bool))


def test_overlapping_polygons_of_one_object_are_united():
    first, second = [0, 0, 30, 0, 30, 30, 0, 30], [15, 15, 45, 15, 45, 45, 15, 45]
    mask = polygons_to_mask([first, second], 64, 64)
    assert mask.sum() == 900 + 900 - 225 == 1575
    coco = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([first, second], 64, 64)))
    assert np.array_equal(mask, coco.astype(bool))


@settings(max_examples=100, deadline=None)
@given(any_mask)
def test_corner_rings_give_any_mask_back_exactly(mask):
    assert np.array_equal(rings_to_mask(mask_to_polygons(mask, tolerance=0), *mask.shape), mask)


def test_empty_mask():
    empty = np.zeros((7, 9), bool)
    rle = mask_to_rle(empty)
    assert rle["size"] == [7, 9]
    assert np.array_equal(rle_to_mask(rle), empty)
    assert rle_area(rle) == mask_area(empty) == 0
    assert rle_bbox(rle) == mask_bbox(empty) == [0.0, 0.0, 0.0, 0.0]
    assert mask_to_polygons(empty) == []
    assert not polygons_to_mask([], 7, 9).any()


def test_centre_rings_keep_one_pixel_lines_and_drop_only_parts_of_one_or_two_pixels():
    mask = np.zeros((20, 20), bool)
    mask[3, 2:12] = True  # a straight one-pixel line
    mask[8:16, 9] = True
    mask[18, 18] = True  # one pixel: no ring
    rings = mask_to_centre_polygons(mask, tolerance=0)
    assert len(rings) == 2
    expected = mask.copy()
    expected[18, 18] = False
    assert np.array_equal(centre_polygons_to_mask(rings, 20, 20), expected)
