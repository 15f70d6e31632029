"""Segment everything with SAM 2 on stored features matches the package's own generator."""

import numpy as np
import torch
from pycocotools import mask as mask_utils
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

from samapp.ml.registry import load_model
from samapp.ml.sam2_automatic import generate_sam2_masks
from samapp.ml.sam2_embedding import Sam2ImageFeatures, compute_sam2_features
from samapp.ml.synthetic import generate_scene

# Filters opened: a random-init model's scores are low, and the test wants masks to compare.
OPTIONS = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def test_stored_features_give_the_package_generators_masks():
    torch.manual_seed(3)
    model = load_model("sam2.1_hiera_tiny", random_init=True)
    image = generate_scene(11, 0, size=96).image
    stored = compute_sam2_features(model, [image])[0]
    # Stored as the worker stores it (fp16), read back as the job reads it.
    features = Sam2ImageFeatures.from_bytes(stored.to_bytes(), stored.input_size, (96, 96))
    ours = generate_sam2_masks(model, image, features, **OPTIONS)
    theirs = SAM2AutomaticMaskGenerator(model, output_mode="coco_rle", **OPTIONS).generate(image)
    assert len(ours) == len(theirs) > 0
    assert set(ours[0]) == set(theirs[0]) >= {"segmentation", "predicted_iou", "point_coords"}
    assert isinstance(ours[0]["segmentation"]["counts"], str)
    # Pair each of theirs with our mask of the same prompt point; fp16 storage moves logits
    # by ~1e-3, so a mask may differ by a few boundary pixels.
    by_point = {tuple(map(tuple, r["point_coords"])): r for r in ours}
    for record in theirs:
        mine = by_point[tuple(map(tuple, record["point_coords"]))]
        a, b = (mask_utils.decode(r["segmentation"]).astype(bool) for r in (mine, record))
        union = np.logical_or(a, b).sum()
        assert union == 0 or np.logical_and(a, b).sum() / union >= 0.99
        assert abs(mine["predicted_iou"] - record["predicted_iou"]) < 1e-2
