"""Segment everything: our generator against SAM's ``SamAutomaticMaskGenerator``.

Same model, image and parameters; SAM's masks must be matched by ours at IoU >= 0.9 for at
least 95% of them (identical semantics; only batching and float rounding differ). The
filters are opened (no IoU/stability threshold, box NMS at 0.95) on an 8x8 grid, so that
many near-duplicate masks survive and are compared one by one whatever the model's quality:
with SAM's default thresholds the committed ``sam_tiny`` keeps no mask at all on this
image, and SAM's own generator then fails on an empty crop (IndexError with crop layers).
"""

import json

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator

from samapp.ml.automatic import AutomaticMaskGenerator, generate_masks
from samapp.ml.embedding import compute_embeddings
from samapp.ml.masks import rle_to_mask
from samapp.ml.registry import load_model
from samapp.ml.tiny import SAM_TINY_CHECKPOINT

MATCH_IOU = 0.9
MIN_MATCHED = 0.95
TRAINED = SAM_TINY_CHECKPOINT.is_file()
PARAMS = dict(
    points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.95
)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools, numpy 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_model("sam_tiny", random_init=not TRAINED)


@pytest.fixture(scope="module")
def image():
    """Four solid shapes on a textured background, 200x260."""
    rng = np.random.default_rng(5)
    image = rng.integers(90, 140, (200, 260, 3)).astype(np.uint8)
    image[20:90, 20:110] = (220, 30, 30)
    yy, xx = np.mgrid[:200, :260]
    image[(yy - 130) ** 2 + (xx - 80) ** 2 < 40**2] = (30, 40, 220)
    image[100:180, 150:240] = (240, 220, 40)
    image[(yy - 50) ** 2 / 30**2 + (xx - 190) ** 2 / 50**2 < 1] = (20, 180, 60)
    return image


def _iou(a, b):
    # Two empty masks are the same mask (the opened filters keep SAM's empty outputs).
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def _matched_fraction(reference, ours):
    ours_masks = [rle_to_mask(r["segmentation"]) for r in ours]
    matched = 0
    for record in reference:
        mask = rle_to_mask(record["segmentation"])
        if any(_iou(mask, other) >= MATCH_IOU for other in ours_masks):
            matched += 1
    return matched / len(reference)


@pytest.mark.parametrize("extra", [{}, {"crop_n_layers": 1}, {"min_mask_region_area": 30}], ids=str)
def test_same_masks_as_sam(model, image, extra):
    params = {**PARAMS, **extra}
    reference = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **params).generate(image)
    ours = generate_masks(model, image, **params)
    assert reference, "SAM found no mask: the comparison would be empty"
    fraction = _matched_fraction(reference, ours)
    print(f"{extra}: SAM {len(reference)} masks, ours {len(ours)}, matched {fraction:.3f}")
    assert fraction >= MIN_MATCHED
    assert abs(len(ours) - len(reference)) <= max(1, 0.05 * len(reference))
    for record in ours:
        assert set(record) == set(reference[0])
        assert record["area"] == rle_to_mask(record["segmentation"]).sum()
    json.dumps(ours)


def test_crop_layers_where_no_mask_passes_the_filters_keep_none(model, image):
    # SAM's own generator raises IndexError here (an empty crop-box tensor in its NMS).
    strict = {"pred_iou_thresh": 1.5, "crop_n_layers": 1, "crop_n_points_downscale_factor": 2}
    assert generate_masks(model, image, points_per_side=8, **strict) == []


def test_precomputed_embedding_gives_the_same_records(model, image):
    (embedding,) = compute_embeddings(model, [image])
    generator = AutomaticMaskGenerator(model, **PARAMS)
    # compared as JSON: an empty candidate's stability score is NaN, which never equals itself
    assert json.dumps(generator.generate(image, embedding=embedding)) == json.dumps(
        generator.generate(image)
    )


def test_embedding_of_another_image_is_rejected(model, image):
    (embedding,) = compute_embeddings(model, [image[:100]])
    with pytest.raises(ValueError, match="Embedding is for a"):
        generate_masks(model, image, embedding=embedding)


def test_point_grid_is_configurable(model):
    generator = AutomaticMaskGenerator(model, points_per_side=7)
    assert generator.point_grids[0].shape == (49, 2)
    assert AutomaticMaskGenerator(model).point_grids[0].shape == (32 * 32, 2)
