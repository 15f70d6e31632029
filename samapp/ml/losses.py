"""SAM's mask losses: focal and dice on logits, and the IoU the IoU head regresses.

Shapes: logits and targets (N, H, W) float32 (targets 0/1); the losses return a scalar
or (N,) per mask where stated."""

import torch
import torch.nn.functional as F
from torch import Tensor


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> Tensor:
    """Focal loss of (..., H, W) float logits against (..., H, W) {0, 1} float targets.

    Returns (...) float, the mean over the last two dimensions.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * ce * (1 - p_t) ** gamma).mean(dim=(-2, -1))


def dice_loss(logits: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft dice loss of (..., H, W) float logits against (..., H, W) {0, 1} float targets.

    Returns (...) float: ``1 - (2 |p t| + smooth) / (|p| + |t| + smooth)``.
    """
    prob = logits.sigmoid()
    inter = (prob * targets).sum(dim=(-2, -1))
    total = prob.sum(dim=(-2, -1)) + targets.sum(dim=(-2, -1))
    return 1 - (2 * inter + smooth) / (total + smooth)


def mask_iou(pred: Tensor, gt: Tensor) -> Tensor:
    """IoU of (..., H, W) bool masks; returns (...) float32, 1.0 where both are empty."""
    # counted as bytes into int32: summing bools widens every pixel to int64 first
    inter = (pred & gt).view(torch.uint8).sum(dim=(-2, -1), dtype=torch.int32).float()
    union = (pred | gt).view(torch.uint8).sum(dim=(-2, -1), dtype=torch.int32).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
