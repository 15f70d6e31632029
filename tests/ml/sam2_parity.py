"""The parity check of SAM 2's browser graphs against ``SAM2ImagePredictor``."""

import numpy as np
import torch
from torch.nn import functional as F


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def assert_matches_predictor(
    expected: tuple[np.ndarray, np.ndarray, np.ndarray],
    got_iou: np.ndarray,
    got_low: np.ndarray,
    indices: list[int],
) -> None:
    """A graph's outputs at `indices` against the predictor's `predict(..., return_logits=True)`
    (masks (K, H, W), scores (K,), low-res logits (K, h, w)): fp32 logits and IoU predictions
    within 1e-3, and thresholded full-size masks with IoU >= 0.99."""
    masks, scores, low_res = expected
    np.testing.assert_allclose(got_iou[0, indices], scores, atol=1e-3, rtol=0)
    np.testing.assert_allclose(got_low[0, indices], low_res, atol=1e-3, rtol=0)
    upscaled = F.interpolate(
        torch.from_numpy(got_low[:, indices]),
        tuple(masks.shape[-2:]),
        mode="bilinear",
        align_corners=False,
    )[0].numpy()
    for ours, theirs in zip(upscaled > 0, masks > 0, strict=True):
        assert mask_iou(ours, theirs) >= 0.99
