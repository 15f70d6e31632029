"""Simulated interactive prompting and its loss (the SAM paper's recipe).

A first point from the ground truth (anywhere on it, or for a share of the objects from
its inner core) or a noisy box around it, then points sampled uniformly from the error
region of the previous prediction (positive on a false negative, negative on a false
positive), with the previous low-resolution logits fed back as the mask prompt; some
rounds run without gradient, as in RITM's iterative training. Ground-truth masks are in
the model's input frame: (N, S, S) bool with ``S = sam.image_encoder.img_size``."""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import Tensor

from samapp.ml.losses import dice_loss, mask_iou, sigmoid_focal_loss
from samapp.ml.train_config import TrainConfig


@dataclass(frozen=True)
class Prompts:
    """Prompts for N objects of one image, in input-frame pixel coordinates.

    Attributes:
      points: (N, K, 2) float32 (x, y).
      labels: (N, K) int64; 1 positive, 0 negative, -1 padding (ignored by SAM).
      boxes: (N, 4) float32 (x0, y0, x1, y1) or None.
      mask_input: (N, 1, 4h, 4w) float32 previous low-res logits or None.
    """

    points: Tensor
    labels: Tensor
    boxes: Tensor | None = None
    mask_input: Tensor | None = None


def sample_points(regions: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sample one pixel uniformly from each of (N, H, W) bool ``regions``.

    Returns (N, 2) float32 (x, y) pixel coordinates and (N,) bool: whether the region
    was non-empty (the point of an empty region is meaningless).
    """
    cumulative = regions.flatten(1).view(torch.uint8).cumsum(dim=1, dtype=torch.int32)
    counts = cumulative[:, -1]
    valid = counts > 0
    draws = torch.rand(cumulative.shape[0], generator=generator, device=cumulative.device)
    rank = (draws * counts).long().clamp(max=(counts - 1).clamp(min=0)).to(torch.int32)
    # index of the rank-th True pixel of each row (the last pixel where the row is empty)
    index = torch.searchsorted(cumulative, rank[:, None] + 1)[:, 0]
    index = index.clamp(max=cumulative.shape[1] - 1)
    width = regions.shape[-1]
    points = torch.stack([index % width, index // width], dim=1).float()
    return points, valid


def sample_error_points(
    pred: Tensor, gt: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Sample a corrective click uniformly from the error region of each object.

    Arguments:
      pred: (N, H, W) bool predicted masks.
      gt: (N, H, W) bool ground truth.

    Returns:
      (N, 1, 2) float32 (x, y) points and (N, 1) int64 labels: 1 on a false negative,
      0 on a false positive, -1 where the prediction is already exact.
    """
    points, valid = sample_points(pred ^ gt, generator)
    x, y = points.long().unbind(dim=1)
    labels = gt[torch.arange(gt.shape[0], device=gt.device), y, x].long()
    labels[~valid] = -1
    return points[:, None], labels[:, None]


def mask_boxes(masks: Tensor) -> Tensor:
    """Bounding boxes of (N, H, W) bool masks: (N, 4) int64 (x0, y0, x1, y1), pixel-edge
    coordinates (x1, y1 exclusive); an empty mask's box has x1 < x0."""
    height, width = masks.shape[-2:]
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    ys = torch.arange(height, device=masks.device)
    xs = torch.arange(width, device=masks.device)
    x0 = torch.where(cols, xs, width).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1) + 1
    y0 = torch.where(rows, ys, height).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1) + 1
    return torch.stack([x0, y0, x1, y1], dim=1)


def noisy_boxes(gt: Tensor, generator: torch.Generator, noise: float = 0.1) -> Tensor:
    """Bounding boxes of (N, H, W) bool masks with SAM's noise: each coordinate moves by
    a normal offset of std ``noise`` times the box side, at most 20 px.

    Returns (N, 4) float32 (x0, y0, x1, y1), pixel-edge coordinates.
    """
    exact = mask_boxes(gt)
    x0, y0, x1, y1 = exact.unbind(dim=1)
    boxes = exact.float()
    sides = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dim=1).float()
    jitter = torch.randn(boxes.shape, generator=generator, device=gt.device)
    return boxes + (jitter * noise * sides).clamp(-20, 20)


def inner_core(gt: Tensor, fraction: float) -> Tensor:
    """The pixels of each of (N, H, W) bool masks whose distance to the mask's boundary
    (the image border counting as outside) is at least ``fraction`` of the largest such
    distance in that mask; (N, H, W) bool, non-empty wherever the mask is."""
    cores = []
    for mask in gt.cpu().numpy().astype(np.uint8):
        distance = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        cores.append(distance >= fraction * distance.max() if distance.max() > 0 else mask > 0)
    return torch.from_numpy(np.stack(cores)).to(gt.device)


def first_prompts(
    gt: Tensor, generator: torch.Generator, box: bool, core: float = 0.0, core_share: float = 0.0
) -> Prompts:
    """The first prompt for each of (N, H, W) bool ground-truth masks: a noisy box, or a
    positive point uniform in the mask, or, for a random ``core_share`` of the objects, in
    the mask's ``inner_core`` of fraction ``core``."""
    if box:
        empty = torch.zeros(gt.shape[0], 0, device=gt.device)
        return Prompts(empty[..., None].expand(-1, -1, 2), empty.long(), noisy_boxes(gt, generator))
    regions = gt
    if core_share > 0:
        from_core = torch.rand(gt.shape[0], generator=generator, device=gt.device) < core_share
        regions = torch.where(from_core[:, None, None], inner_core(gt, core), gt)
    points, _ = sample_points(regions, generator)
    return Prompts(points[:, None], torch.ones(gt.shape[0], 1, dtype=torch.long, device=gt.device))


def decode(
    sam: Sam, image_embedding: Tensor, prompts: Prompts, high_res: list[Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """Run SAM's prompt encoder and mask decoder for N objects.

    Arguments:
      image_embedding: (1, C, h, w) float32 from ``sam.image_encoder``, shared by the N
        objects of one image, or (N, C, h, w), each object's own image embedding.
      high_res: for SAM 2's decoder (``sam2_adapter.Sam2AsSam``), its two high-resolution
        maps (1 or N, C0, 4h, 4w) and (1 or N, C1, 2h, 2w), batched as ``image_embedding``;
        None for SAM's.

    Returns:
      (N, 4, 4h, 4w) float32 low-res logits and (N, 4) float32 predicted IoU: output 0
      is SAM's single-mask output (``multimask_output=False``), outputs 1-3 its three
      multimask outputs.
    """
    points = (prompts.points, prompts.labels) if prompts.points.shape[1] else None
    sparse, dense = sam.prompt_encoder(points=points, boxes=prompts.boxes, masks=prompts.mask_input)
    if image_embedding.shape[0] > 1:
        # SAM's decoder adds one image's embedding to every object's dense prompt
        # embedding; adding each object's own instead is the same sum, and decodes the
        # objects of several images in one call.
        dense = dense + image_embedding
        image_embedding = torch.zeros_like(image_embedding[:1])
    extra = {} if high_res is None else {"high_res_features": high_res}
    return sam.mask_decoder.predict_masks(
        image_embeddings=image_embedding,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        **extra,
    )


def interactive_loss(
    sam: Sam,
    image_embedding: Tensor,
    gt: Tensor,
    generator: torch.Generator,
    config: TrainConfig,
    box: bool = False,
    high_res: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Simulate ``config.iterations`` rounds of interactive prompting on N objects.

    Round 1 uses the first prompt: the loss is that of the best of the three multimask
    outputs plus that of the single-mask output (which every later round refines), and
    the IoU head picks the multimask output shown, whose loss is added with weight
    ``config.shown_weight``: SAM's best-of-three loss alone leaves the other two outputs
    untrained, and a small IoU head often picks one of them. Each later round adds a
    click from the error region of the mask shown, feeds back its low-res logits, and
    trains the single-mask output, as ``SamPredictor`` is used after the first click.
    Before the second round, a random number (0 to ``config.extra_click_rounds``) of
    corrective rounds run without gradient (RITM's iterative training), so the later
    rounds learn from the many clicks and refined mask prompts of a long interaction at
    the cost of forward passes only.

    Arguments:
      image_embedding: (1, C, h, w) or (N, C, h, w) float32 (see ``decode``), gradients
        flow into it.
      gt: (N, S, S) bool ground-truth masks in the input frame.
      box: start from noisy boxes instead of points.
      high_res: SAM 2's high-resolution maps, batched as ``image_embedding`` (``decode``).

    Returns:
      Scalar float32 loss (mean over objects and rounds) and (N,) float32 IoU of the
      final shown masks (detached).
    """
    prompts = first_prompts(
        gt, generator, box, config.first_click_core, config.first_click_core_share
    )
    rows = torch.arange(gt.shape[0], device=gt.device)
    total = image_embedding.new_zeros(())
    # The loss compares the low-res logits (4x the embedding's side) with the share of each
    # low-res cell the object covers: the boundary keeps sub-cell precision at a sixteenth
    # of the cost of upscaling every output to the input size.
    low_res_size = [4 * side for side in image_embedding.shape[-2:]]
    coverage = F.interpolate(gt[:, None].float(), low_res_size, mode="area")
    for round_ in range(config.iterations):
        if round_ == 1 and config.extra_click_rounds:
            prompts = click_without_gradient(
                sam, image_embedding, gt, prompts, generator, config, high_res
            )
        low_res, iou_pred = decode(sam, image_embedding, prompts, high_res)
        if round_:
            low_res, iou_pred = low_res[:, :1], iou_pred[:, :1]
        target = coverage.expand_as(low_res)
        losses = config.focal_weight * sigmoid_focal_loss(
            low_res, target
        ) + config.dice_weight * dice_loss(low_res, target)
        with torch.no_grad():
            masks = input_size_masks(sam, low_res)
            iou = mask_iou(masks, gt[:, None])
        if round_:
            mask_loss, shown = losses[:, 0], torch.zeros_like(rows)
        else:
            shown = iou_pred.detach()[:, 1:].argmax(dim=1) + 1
            mask_loss = (
                losses[:, 1:].amin(dim=1) + losses[:, 0] + config.shown_weight * losses[rows, shown]
            )
        total = total + mask_loss.mean() + config.iou_weight * F.mse_loss(iou_pred, iou)
        prompts = corrective_prompts(
            prompts, low_res[rows, shown], masks[rows, shown], gt, generator
        )
    return total / config.iterations, iou[rows, shown]


def input_size_masks(sam: Sam, low_res: Tensor) -> Tensor:
    """(N, M, 4h, 4w) float low-res logits -> (N, M, S, S) bool masks at the input size
    (bilinear upscaling, thresholded at ``sam.mask_threshold``)."""
    size = sam.image_encoder.img_size
    logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    return logits > sam.mask_threshold


def corrective_prompts(
    prompts: Prompts, low_res: Tensor, masks: Tensor, gt: Tensor, generator: torch.Generator
) -> Prompts:
    """``prompts`` plus a click from the error region of (N, S, S) bool ``masks`` (shown
    to the user) against ``gt``, with their (N, 4h, 4w) low-res logits as mask prompt."""
    points, labels = sample_error_points(masks, gt, generator)
    return Prompts(
        torch.cat([prompts.points, points], dim=1),
        torch.cat([prompts.labels, labels], dim=1),
        prompts.boxes,
        low_res[:, None].detach(),
    )


@torch.no_grad()
def click_without_gradient(
    sam: Sam,
    image_embedding: Tensor,
    gt: Tensor,
    prompts: Prompts,
    generator: torch.Generator,
    config: TrainConfig,
    high_res: list[Tensor] | None = None,
) -> Prompts:
    """Run 0 to ``config.extra_click_rounds`` (uniform) corrective rounds on the single-mask
    output without gradient; returns the prompts after them."""
    rounds = int(
        torch.randint(
            config.extra_click_rounds + 1, (1,), generator=generator, device=generator.device
        )
    )
    for _ in range(rounds):
        low_res = decode(sam, image_embedding, prompts, high_res)[0][:, 0]
        masks = input_size_masks(sam, low_res[:, None])[:, 0]
        prompts = corrective_prompts(prompts, low_res, masks, gt, generator)
    return prompts


def batch_loss(
    sam: Sam,
    embeddings: Tensor,
    gts: list[Tensor],
    boxes: list[bool],
    generator: torch.Generator,
    config: TrainConfig,
    high_res: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """``interactive_loss`` over the objects of several images, decoded together: one
    batch for the images whose objects start from a box, one for those starting from a
    point (a decoder call costs about the same for a few objects as for one, so batching
    is what makes a small model's step cheap).

    Arguments:
      embeddings: (B, C, h, w) float32 image embeddings.
      gts: B tensors (N_i, S, S) bool, the objects of each image in the input frame.
      boxes: B flags, start image i's objects from noisy boxes.
      high_res: SAM 2's high-resolution maps of the B images, (B, C0, 4h, 4w) and
        (B, C1, 2h, 2w); None for SAM.

    Returns:
      The scalar loss (mean over all objects) and the (sum N_i,) IoU of the final shown
      masks, box-started objects last.
    """
    losses, ious = [], []
    for box in (False, True):
        chosen = [i for i, flag in enumerate(boxes) if flag == box]
        if not chosen:
            continue
        gt = torch.cat([gts[i] for i in chosen])
        owner = torch.cat(
            [torch.full((gts[i].shape[0],), i, device=embeddings.device) for i in chosen]
        )
        maps = None if high_res is None else [f[owner] for f in high_res]
        loss, iou = interactive_loss(sam, embeddings[owner], gt, generator, config, box, maps)
        losses.append(loss * gt.shape[0])
        ious.append(iou)
    all_ious = torch.cat(ious)
    return torch.stack(losses).sum() / all_ious.numel(), all_ious
