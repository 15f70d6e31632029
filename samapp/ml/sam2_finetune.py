"""Fine-tuning SAM 2's mask decoder (and optionally its prompt encoder) on stored features.

The same data-engine step as ``finetune`` for SAM: the image encoder stays frozen, so the
three stored maps (``sam2_embedding``) stay valid for the new weights. The loss and the click
simulation are SAM's (``click_simulation.interactive_loss``: focal:dice 20:1 on the best multimask
output plus the single-mask output, IoU-head MSE, corrective clicks with the previous logits as
mask prompt) through ``sam2_adapter.Sam2AsSam``, which gives SAM 2's mask decoder SAM's
interface, fed the image's high-resolution maps.

The evaluation is ``evaluation``'s click protocol (mIoU after 1, 3, 5 clicks, NoC@85/90)
through ``SAM2ImagePredictor`` on the stored features.

The decoder's ``conv_s0`` / ``conv_s1`` stay frozen: the stored high-resolution maps have
already been through them. A version stores ``sam_mask_decoder.*`` and
``sam_prompt_encoder.*`` in fp16 (about 8 MiB for Hiera-T).
"""

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from sam2.modeling.sam2_base import SAM2Base
from torch import Tensor, nn

from samapp.ml.click_simulation import interactive_loss
from samapp.ml.evaluation import evaluate_interactive
from samapp.ml.finetune import (
    EVAL_CLICKS,
    FinetuneConfig,
    FinetuneResult,
    finetune_loop,
    interactive_metrics,
    trained_keys_check,
)
from samapp.ml.sam2_adapter import Sam2AsSam
from samapp.ml.sam2_embedding import Sam2ImageFeatures
from samapp.ml.training import make_optimizer, optimizer_step

TRAINED_PREFIXES = ("sam_mask_decoder.", "sam_prompt_encoder.")
# Applied by the image encoder's pass: the stored maps are their outputs.
FROZEN_PREFIXES = ("sam_mask_decoder.conv_s0.", "sam_mask_decoder.conv_s1.")


@dataclass(frozen=True)
class Sam2FinetuneSample:
    """One image of the fine-tuning set.

    Attributes:
      features: the stored maps (float32, CPU): image_embed (C, s, s), high_res_feats
        (C0, 4s, 4s) and (C1, 2s, 2s).
      masks: (N, S, S) bool ground-truth masks in SAM 2's input frame (the image resized to
        the S x S square, S = ``model.image_size``), N >= 1.
    """

    features: Sam2ImageFeatures
    masks: Tensor


def masks_to_sam2_frame(masks: np.ndarray, image_size: int) -> Tensor:
    """(N, H, W) bool masks in the original frame -> (N, S, S) bool in SAM 2's input frame
    (resized to the square as SAM 2 resizes the image; nearest neighbour keeps them binary)."""
    out = [
        cv2.resize(m.astype(np.uint8), (image_size, image_size), interpolation=cv2.INTER_NEAREST)
        for m in masks
    ]
    return torch.from_numpy(np.stack(out).astype(bool))


def make_sam2_sample(
    features: Sam2ImageFeatures, masks: Sequence[np.ndarray], image_size: int
) -> Sam2FinetuneSample:
    """A sample from stored features and its objects' (H, W) bool masks in the original frame
    (objects that vanish at the input resolution are dropped)."""
    gt = masks_to_sam2_frame(np.stack([np.asarray(m, bool) for m in masks]), image_size)
    return Sam2FinetuneSample(features=features, masks=gt[gt.flatten(1).any(1)])


def sam2_batch_loss(
    view: Sam2AsSam,
    samples: Sequence[Sam2FinetuneSample],
    boxes: Sequence[bool],
    generator: torch.Generator,
    config: FinetuneConfig,
) -> tuple[Tensor, Tensor]:
    """``interactive_loss`` over the objects of several images, one image at a time (its
    objects share its maps by broadcasting; several images' high-resolution maps per object
    would take hundreds of MiB).

    Arguments:
      samples: the images, each with (N_i, S, S) bool objects (at most ``config.max_objects``
        are drawn per image).
      boxes: per image, start its objects from noisy boxes instead of points.

    Returns:
      The scalar float32 loss (mean over all objects) and the (sum N_i,) IoU of the final
      shown masks.
    """
    device = next(view.parameters()).device
    losses, ious = [], []
    for sample, box in zip(samples, boxes, strict=True):
        gt = sample.masks.to(device)
        if gt.shape[0] > config.max_objects:
            keep = torch.randperm(gt.shape[0], generator=generator, device=device)
            gt = gt[keep[: config.max_objects]]
        features = sample.features
        high_res = [f[None].to(device) for f in features.high_res_feats]
        embedding = features.image_embed[None].to(device)
        loss, iou = interactive_loss(view, embedding, gt, generator, config.recipe, box, high_res)
        losses.append(loss * gt.shape[0])
        ious.append(iou)
    all_ious = torch.cat(ious)
    return torch.stack(losses).sum() / all_ious.numel(), all_ious


def _trainable(model: SAM2Base, config: FinetuneConfig) -> list[nn.Parameter]:
    model.requires_grad_(False)
    modules: list[nn.Module] = [model.sam_mask_decoder]
    if config.train_prompt_encoder:
        modules.append(model.sam_prompt_encoder)
    for module in modules:
        module.requires_grad_(True)
    model.sam_mask_decoder.conv_s0.requires_grad_(False)
    model.sam_mask_decoder.conv_s1.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def sam2_trained_state_dict(model: SAM2Base) -> dict[str, Tensor]:
    """The fine-tunable part of ``model``'s state dict, fp16 on the CPU (both modules, so a
    version trained from another version is complete on top of the base model)."""
    return {
        k: v.detach().half().cpu()
        for k, v in model.state_dict().items()
        if k.startswith(TRAINED_PREFIXES)
    }


def apply_sam2_trained_state(model: SAM2Base, state_dict: dict[str, Tensor]) -> SAM2Base:
    """Load a ``sam2_trained_state_dict`` into ``model`` in place (its dtype and device).

    Raises:
      KeyError: a key is not a fine-tunable one of ``model``, or a module is only partly
        present (a mismatched base model).
    """
    own = model.state_dict()
    trained_keys_check(own, state_dict, TRAINED_PREFIXES, TRAINED_PREFIXES)
    model.load_state_dict({**own, **state_dict}, strict=True)
    return model


def finetune_sam2(
    model: SAM2Base,
    samples: Sequence[Sam2FinetuneSample],
    config: FinetuneConfig | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on ``samples`` as ``finetune.finetune`` does SAM
    (``config`` defaults to ``FinetuneConfig()``); ``model`` is left unchanged. Returns the
    trained modules' fp16 state dict (``sam2_trained_state_dict``), the per-step loss and IoU
    curves and the wall time."""
    if not samples:
        raise ValueError("Fine-tuning needs at least one image with objects")
    config = config or FinetuneConfig()
    trained = copy.deepcopy(model)
    device = next(trained.parameters()).device
    params = _trainable(trained, config)
    optimizer, scheduler = make_optimizer(params, config.recipe)
    view = Sam2AsSam(trained)

    def train_batch(
        batch: list[Sam2FinetuneSample], generator: torch.Generator
    ) -> tuple[float, float]:
        draws = torch.rand(len(batch), generator=generator, device=device)
        boxes = [bool(d < config.recipe.box_probability) for d in draws]
        loss, ious = sam2_batch_loss(view, batch, boxes, generator, config)
        optimizer_step(optimizer, loss, config.recipe.grad_clip)
        return loss.item(), ious.mean().item()

    trained.train()
    result = finetune_loop(samples, config.recipe, device, train_batch, scheduler, on_step)
    trained.eval()
    result.state_dict = sam2_trained_state_dict(trained)
    return result


def evaluate_sam2_features(
    model: SAM2Base,
    features: Sequence[Sam2ImageFeatures],
    masks: Sequence[Sequence[np.ndarray]],
    clicks: int | None = None,
) -> dict[str, float | int]:
    """``finetune.interactive_metrics`` of ``model`` on stored features and their objects'
    (H, W) bool masks in the original frame (the held-out split), over ``clicks`` clicks
    (default ``EVAL_CLICKS``), with the click protocol of ``evaluation.evaluate_interactive``."""
    return interactive_metrics(evaluate_interactive(model, features, masks, clicks or EVAL_CLICKS))
