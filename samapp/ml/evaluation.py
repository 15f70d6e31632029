"""Interactive evaluation of a SAM model: mIoU after k simulated clicks and NoC.

The first click is the ground truth's interior point farthest from its boundary (the
maximum of the distance transform); each next click is at the centre (distance
transform maximum) of the largest error region, positive on a false negative and
negative on a false positive. The evaluated mask is the one SAM itself would show:
the IoU head's pick among the three multimask outputs for the first click, then the
single-mask output with the previous low-res logits as mask prompt. The oracle is the
best IoU among all outputs (three multimask and the single mask) for the same prompts.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam


@dataclass(frozen=True)
class InteractiveResult:
    """Per-object IoUs along the simulated clicks.

    Attributes:
      ious: (num_objects, clicks) float64, IoU of the shown mask after each click.
      oracle_ious: (num_objects, clicks) float64, best IoU among all outputs.
    """

    ious: np.ndarray
    oracle_ious: np.ndarray

    def miou(self, clicks: int) -> float:
        """Mean IoU of the shown masks after ``clicks`` clicks (1-based)."""
        return float(self.ious[:, clicks - 1].mean())

    def oracle_miou(self, clicks: int) -> float:
        """Mean best-of-outputs IoU after ``clicks`` clicks (1-based)."""
        return float(self.oracle_ious[:, clicks - 1].mean())

    def noc(self, threshold: float) -> float:
        """Mean number of clicks to reach ``threshold`` IoU, counting the evaluated
        number of clicks for objects that never reach it."""
        reached = self.ious >= threshold
        first = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, self.ious.shape[1])
        return float(first.mean())


def _centre(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the maximum of the distance transform of an (H, W) bool region, the
    image border counting as outside."""
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return int(x), int(y)


def first_click(gt: np.ndarray) -> tuple[int, int]:
    """(x, y) of the interior point of (H, W) bool ``gt`` farthest from its boundary."""
    return _centre(gt)


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], int]:
    """The corrective click for (H, W) bool ``pred`` against (H, W) bool ``gt``.

    Returns ((x, y), label): the centre of the largest connected error region, label 1
    when it is a false negative, 0 when a false positive, -1 (no click) when exact.
    """
    best_area, best = 0, ((0, 0), -1)
    for label, error in ((1, gt & ~pred), (0, pred & ~gt)):
        count, components, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), 8)
        if count > 1:
            largest = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            area = int(stats[largest, cv2.CC_STAT_AREA])
            if area > best_area:
                best_area, best = area, (_centre(components == largest), label)
    return best


def _ious(masks: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of (N, M, H, W) bool masks with (N, H, W) bool gt: (N, M) float64."""
    inter = (masks & gt[:, None]).sum(axis=(2, 3))
    union = (masks | gt[:, None]).sum(axis=(2, 3))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def evaluate_interactive(
    sam: Sam,
    images: Sequence[np.ndarray],
    gt_masks: Sequence[Sequence[np.ndarray]],
    clicks: int = 3,
) -> InteractiveResult:
    """Simulate ``clicks`` clicks on every object through ``SamPredictor``.

    Arguments:
      images: (H, W, 3) uint8 RGB images.
      gt_masks: per image, its objects' (H, W) bool masks (all objects of an image are
        prompted as one batch).
      clicks: number of clicks per object, >= 1.

    Returns:
      The per-object IoUs, objects in the order given.
    """
    predictor = SamPredictor(sam.eval())
    ious, oracle = [], []
    with torch.inference_mode():
        for image, masks in zip(images, gt_masks, strict=True):
            predictor.set_image(image)
            gt = np.stack(masks)
            points = [[first_click(m)] for m in gt]
            labels = [[1] for _ in gt]
            mask_input = None
            for click in range(clicks):
                outputs = []
                for multimask in (True, False) if click else (True,):
                    outputs.append(_predict(predictor, points, labels, mask_input, multimask))
                logits, scores, low_res = outputs[-1]
                picked = scores.argmax(axis=1)
                rows = np.arange(len(gt))
                shown = logits[rows, picked] > sam.mask_threshold
                all_masks = np.concatenate([o[0] for o in outputs], axis=1) > sam.mask_threshold
                ious.append(_ious(shown[:, None], gt)[:, 0])
                oracle.append(_ious(all_masks, gt).max(axis=1))
                mask_input = low_res[rows, picked][:, None]
                for i, (point, label) in enumerate(next_click(s, g) for s, g in zip(shown, gt)):
                    points[i].append(point)
                    labels[i].append(label)
    n = clicks
    return InteractiveResult(
        np.concatenate([np.stack(ious[i::n], axis=1) for i in range(0)] or _by_object(ious, n)),
        _by_object(oracle, n),
    )
