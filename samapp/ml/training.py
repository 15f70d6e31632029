"""SAM's training recipe as importable functions.

Losses follow the SAM paper: focal and dice loss (20:1) on the best of the multi-mask
outputs, and MSE between the IoU head and the actual IoU of each predicted mask.
Prompting is simulated interactively: a first point from the ground truth (anywhere on
it, or for a share of the objects from its inner core) or a noisy box around it, then
points sampled uniformly from the error region of the previous prediction (positive on
a false negative, negative on a false positive), with the previous low-resolution logits
fed back as the mask prompt; some of these rounds run without gradient, as in RITM's
iterative training, so the model sees long interactions at the cost of forward passes.

The per-image functions take image embeddings, so fine-tuning only the mask decoder on
stored embeddings reuses them; ``train_step`` and ``train`` add the image encoder.
Ground-truth masks are given in the model's input frame: (N, S, S) bool with
``S = sam.image_encoder.img_size``, image pixels at the top left.
"""

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import Tensor
from tqdm import tqdm

from samapp.ml.evaluation import evaluate_sam_tiny
from samapp.ml.synthetic import SCENE_SIZE, Style, generate_scene
from samapp.ml.tiny import SAM_TINY_CONFIG, build_sam_tiny


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the tiny SAM recipe; the defaults train ``sam_tiny``."""

    seed: int = 0
    steps: int = 6000
    images_per_step: int = 4
    iterations: int = 2
    box_probability: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    focal_weight: float = 20.0
    focal_warmup_steps: int = 200
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    # The shown output's loss (see ``interactive_loss``) joins for the last quarter of the
    # schedule, when the multimask outputs have separated: added late, the IoU head's pick
    # gained +0.046 held-out 1-click mIoU (0.688 -> 0.734, oracle unchanged at 0.80). A run
    # with it from the start (and a wider encoder, fewer steps) reached oracle 0.72.
    shown_weight: float = 1.0
    shown_start: float = 0.75
    # Measured by 600 steps of decoder-only training from the 0.734 / 0.791 checkpoint
    # (held-out 1-click mIoU with the evaluation's centre click / with a click uniform in
    # the object; 3-click mIoU): the checkpoint 0.734 / 0.680 / 0.791; up to two corrective rounds
    # without gradient and every first click from the inner half 0.758 / 0.642 / 0.805;
    # half of them from the inner half 0.743 / 0.657 / 0.804. Users click well inside an
    # object (SAM's uniform sampling puts three quarters of a disc's clicks in its outer
    # half), but not always. Full runs (6000 steps; centre / anywhere / 3 clicks, anywhere
    # as ``evaluate_sam_tiny`` draws it; SAM's positional scale 1.0): every first click
    # from the inner half 0.769 / 0.608 / 0.814; half of them (these defaults) 0.737 /
    # 0.667 / 0.810 (0.754 / 0.692 / 0.813 with ``positional_encoding_scale`` 0.45); the previous
    # recipe (none, no extra rounds, 6800 steps) 0.734 / 0.686 / 0.791. The extra rounds
    # keep later clicks helping (mIoU after 8 clicks 0.786 without them: the model never
    # saw more than two points).
    first_click_core: float = 0.5
    first_click_core_share: float = 0.5
    extra_click_rounds: int = 2
    checkpoint_every: int = 100
    style: Style = "default"
    attention_init_gain: float = 3.0


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


def noisy_boxes(gt: Tensor, generator: torch.Generator, noise: float = 0.1) -> Tensor:
    """Bounding boxes of (N, H, W) bool masks with SAM's noise: each coordinate moves by
    a normal offset of std ``noise`` times the box side, at most 20 px.

    Returns (N, 4) float32 (x0, y0, x1, y1), pixel-edge coordinates.
    """
    height, width = gt.shape[-2:]
    rows, cols = gt.any(dim=2), gt.any(dim=1)
    ys = torch.arange(height, device=gt.device)
    xs = torch.arange(width, device=gt.device)
    x0 = torch.where(cols, xs, width).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1) + 1
    y0 = torch.where(rows, ys, height).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1) + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
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


def decode(sam: Sam, image_embedding: Tensor, prompts: Prompts) -> tuple[Tensor, Tensor]:
    """Run SAM's prompt encoder and mask decoder for N objects.

    Arguments:
      image_embedding: (1, C, h, w) float32 from ``sam.image_encoder``, shared by the N
        objects of one image, or (N, C, h, w), each object's own image embedding.

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
    return sam.mask_decoder.predict_masks(
        image_embeddings=image_embedding,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
    )


def interactive_loss(
    sam: Sam,
    image_embedding: Tensor,
    gt: Tensor,
    generator: torch.Generator,
    config: TrainConfig,
    box: bool = False,
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
            prompts = click_without_gradient(sam, image_embedding, gt, prompts, generator, config)
        low_res, iou_pred = decode(sam, image_embedding, prompts)
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
) -> Prompts:
    """Run 0 to ``config.extra_click_rounds`` (uniform) corrective rounds on the single-mask
    output without gradient; returns the prompts after them."""
    rounds = int(
        torch.randint(
            config.extra_click_rounds + 1, (1,), generator=generator, device=generator.device
        )
    )
    for _ in range(rounds):
        low_res = decode(sam, image_embedding, prompts)[0][:, 0]
        masks = input_size_masks(sam, low_res[:, None])[:, 0]
        prompts = corrective_prompts(prompts, low_res, masks, gt, generator)
    return prompts


def scene_batch(
    seed: int, start: int, count: int, size: int, style: Style, device: torch.device
) -> tuple[Tensor, list[Tensor]]:
    """Scenes ``start .. start + count - 1`` of stream ``seed``, resized to the model's
    input side ``size`` as ``SamPredictor`` would (bilinear, antialiased).

    Returns (B, 3, size, size) float32 images in 0..255 and, per image, (N, size, size)
    bool masks.
    """
    scenes = [generate_scene(seed, start + i, style) for i in range(count)]
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float()
    masks = [torch.from_numpy(np.stack(s.masks))[:, None].float() for s in scenes]
    if size != SCENE_SIZE:
        images = F.interpolate(images, (size, size), mode="bilinear", antialias=True)
        masks = [F.interpolate(m, (size, size), mode="area") for m in masks]
    # Area-resized masks are coverage fractions: a pixel is in when at least half covered.
    return images.to(device), [(m[:, 0] >= 0.5).to(device) for m in masks]  # noqa: PLR2004


def train_step(
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    gts: list[Tensor],
    generator: torch.Generator,
    config: TrainConfig,
) -> tuple[float, float]:
    """One optimisation step of the whole model on a batch of images.

    Arguments:
      images: (B, 3, S, S) float32 RGB in 0..255, S = sam.image_encoder.img_size.
      gts: B tensors (N_i, S, S) bool, the objects of each image.

    Returns:
      The loss (mean over objects) and the mean IoU of the final picked masks.
    """
    embeddings = sam.image_encoder(sam.preprocess(images))
    return embeddings_step(sam, optimizer, embeddings, gts, generator, config)


def batch_loss(
    sam: Sam,
    embeddings: Tensor,
    gts: list[Tensor],
    boxes: list[bool],
    generator: torch.Generator,
    config: TrainConfig,
) -> tuple[Tensor, Tensor]:
    """``interactive_loss`` over the objects of several images, decoded together: one
    batch for the images whose objects start from a box, one for those starting from a
    point (a decoder call costs about the same for a few objects as for one, so batching
    is what makes a small model's step cheap).

    Arguments:
      embeddings: (B, C, h, w) float32 image embeddings.
      gts: B tensors (N_i, S, S) bool, the objects of each image in the input frame.
      boxes: B flags, start image i's objects from noisy boxes.

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
        per_object = torch.cat(
            [embeddings[i : i + 1].expand(gts[i].shape[0], -1, -1, -1) for i in chosen]
        )
        loss, iou = interactive_loss(sam, per_object, gt, generator, config, box)
        losses.append(loss * gt.shape[0])
        ious.append(iou)
    all_ious = torch.cat(ious)
    return torch.stack(losses).sum() / all_ious.numel(), all_ious


def embeddings_step(
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    embeddings: Tensor,
    gts: list[Tensor],
    generator: torch.Generator,
    config: TrainConfig,
) -> tuple[float, float]:
    """One optimisation step from image embeddings: simulated prompting on every object,
    backward, gradient clipping, ``optimizer.step()``. With stored embeddings and an
    optimizer over the mask decoder only, this fine-tunes the decoder alone.

    Arguments:
      embeddings: (B, C, h, w) float32 image embeddings (with or without grad).
      gts: B tensors (N_i, S, S) bool, the objects of each image in the input frame.

    Returns:
      The loss (mean over objects) and the mean IoU of the final picked masks.
    """
    use_box = torch.rand(len(gts), generator=generator, device=embeddings.device)
    boxes = [bool(draw < config.box_probability) for draw in use_box]
    loss, ious = batch_loss(sam, embeddings, gts, boxes, generator, config)
    optimizer_step(optimizer, loss, config.grad_clip)
    return loss.item(), ious.mean().item()


def optimizer_step(optimizer: torch.optim.Optimizer, loss: Tensor, grad_clip: float) -> None:
    """Backward ``loss``, clip the gradient norm of the optimizer's parameters to
    ``grad_clip``, and step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def init_decoder_attention(sam: Sam, gain: float) -> None:
    """Initialise the decoder's token<->image attention to compare positions.

    SAM's point embedding is ``PE(click) + label`` and the image's positional encoding
    ``PE(pixel)``, both ``[sin(2 pi f.x), cos(2 pi f.x)]`` over random frequencies f, so
    ``PE(a) . PE(b) = sum cos(2 pi f.(a - b))`` peaks where a = b. Random query and key
    projections destroy that kernel and leave attention blind to where the click is, a
    saddle a small decoder leaves only after far more steps than a CPU budget allows.
    Here each head's query and key projections both pick the sine and cosine features of
    a few frequencies (the lowest go to different heads, so heads see several scales),
    scaled by ``gain``: at init the point token reads the image around the click and the
    pixels near the click read the point token. Value and output projections stay random.
    """
    frequencies = sam.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    count = frequencies.shape[1]
    by_wavelength = frequencies.norm(dim=0).argsort()
    transformer = sam.mask_decoder.transformer
    attentions = [transformer.final_attn_token_to_image]
    for layer in transformer.layers:
        attentions += [layer.cross_attn_token_to_image, layer.cross_attn_image_to_token]
    for attention in attentions:
        per_head = attention.internal_dim // attention.num_heads
        weight = torch.zeros(attention.internal_dim, attention.embedding_dim)
        for head in range(attention.num_heads):
            chosen = by_wavelength[head :: attention.num_heads][: per_head // 2]
            rows = head * per_head + 2 * torch.arange(len(chosen))
            weight[rows, chosen] = gain
            weight[rows + 1, count + chosen] = gain
        with torch.no_grad():
            for projection in (attention.q_proj, attention.k_proj):
                projection.weight.copy_(weight)
                projection.bias.zero_()


def make_optimizer(
    params: list[torch.nn.Parameter], config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with linear warmup then cosine decay to zero over ``config.steps``."""
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class TrainResult:
    """Where a ``train`` call stopped: ``step`` of ``config.steps``, and the wall-clock
    and process CPU seconds spent training up to it, over all resumed runs."""

    step: int
    finished: bool
    seconds: float
    cpu_seconds: float


def save_state(
    path: Path,
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    step: int,
    seconds: tuple[float, float],
    config: TrainConfig,
) -> None:
    """Atomically write a resumable training state (model, optimizer, schedule, step,
    wall-clock and CPU seconds spent, prompt RNG, config) to ``path``."""
    state = {
        "model": sam.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "step": step,
        "seconds": seconds[0],
        "cpu_seconds": seconds[1],
        "config": asdict(config),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    sam: Sam,
    config: TrainConfig,
    state_path: Path,
    resume: bool = False,
    max_seconds: float | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> TrainResult:
    """Train the whole model on generated scenes (``config.seed`` stream) in place.

    The focal weight ramps up linearly from 0 over ``config.focal_warmup_steps``: with
    dice alone the decoder learns to separate objects before focal loss on the many
    background pixels can push every mask to empty. The loss of the output the IoU head
    shows joins from step ``config.shown_start * config.steps`` on. The data of step t
    are scenes ``t * images_per_step ...`` of the stream, so a run resumed from
    ``state_path`` continues exactly where it stopped. The state is saved every
    ``config.checkpoint_every`` steps, at the end, and when this call stops early after
    ``max_seconds`` or ``max_steps`` steps (then ``finished`` is False). The model stays
    on its current device.
    """
    device = next(sam.parameters()).device
    optimizer, scheduler = make_optimizer(list(sam.parameters()), config)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    step, seconds, cpu_seconds = 0, 0.0, 0.0
    if resume:
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["config"] != asdict(config):
            raise ValueError(f"{state_path} was written with another config: {state['config']}")
        sam.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"].cpu())
        step, seconds, cpu_seconds = state["step"], state["seconds"], state["cpu_seconds"]
    sam.train()
    start, cpu_start, first_step = time.monotonic(), time.process_time(), step

    def spent() -> tuple[float, float]:
        return (
            seconds + time.monotonic() - start,
            cpu_seconds + time.process_time() - cpu_start,
        )

    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="sam_tiny")
    while step < config.steps:
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
        if max_steps is not None and step - first_step >= max_steps:
            break
        images, gts = scene_batch(
            config.seed,
            step * config.images_per_step,
            config.images_per_step,
            sam.image_encoder.img_size,
            config.style,
            device,
        )
        ramp = min(1.0, step / config.focal_warmup_steps) if config.focal_warmup_steps else 1.0
        shown = config.shown_weight if step >= config.shown_start * config.steps else 0.0
        step_config = replace(config, focal_weight=config.focal_weight * ramp, shown_weight=shown)
        loss, iou = train_step(sam, optimizer, images, gts, generator, step_config)
        scheduler.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", iou=f"{iou:.3f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_state(state_path, sam, optimizer, scheduler, generator, step, spent(), config)
    bar.close()
    if step < config.steps:
        save_state(state_path, sam, optimizer, scheduler, generator, step, spent(), config)
    sam.eval()
    return TrainResult(step, step >= config.steps, *spent())


def save_weights(sam: Sam, path: Path) -> None:
    """Write the model's state dict in fp16 (what ``build_sam_tiny`` loads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().half().cpu() for k, v in sam.state_dict().items()}, path)


def train_sam_tiny(
    out: Path,
    config: TrainConfig,
    resume: bool = False,
    max_seconds: float | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, object] | None:
    """Train ``sam_tiny`` from a seeded init, then write its weights and metrics.

    The resumable state lives beside ``out`` as ``<stem>.state.pt`` until training
    finishes; then ``out`` gets the fp16 state dict and ``<stem>.json`` the metrics
    (``write_metrics``).

    Returns:
      The metrics written, or None when ``max_seconds`` ran out first (the state is
      saved; call again with ``resume=True``).
    """
    state_path = out.with_name(out.stem + ".state.pt")
    if resume and not state_path.exists():
        raise FileNotFoundError(f"no training state to resume at {state_path}")
    torch.manual_seed(config.seed)
    sam = build_sam_tiny()
    init_decoder_attention(sam, config.attention_init_gain)
    sam = sam.to(device)
    result = train(sam, config, state_path, resume, max_seconds, progress)
    if not result.finished:
        return None
    save_weights(sam, out)
    metrics = write_metrics(out, config, result.seconds, result.cpu_seconds)
    state_path.unlink()
    return metrics


def write_metrics(
    out: Path, config: TrainConfig, seconds: float, cpu_seconds: float
) -> dict[str, object]:
    """Evaluate the weights in ``out`` on the held-out set and write ``<stem>.json``:
    the interactive metrics (``evaluation.evaluate_sam_tiny``), the training wall-clock
    and process CPU seconds, the recipe and the model's dimensions. Returns what was
    written."""
    sam = build_sam_tiny(out)
    metrics = {
        **evaluate_sam_tiny(sam),
        "training_seconds": round(seconds, 1),
        "training_cpu_seconds": round(cpu_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "seed": config.seed,
        "train_config": asdict(config),
        "model_config": asdict(SAM_TINY_CONFIG),
        "parameters": sum(p.numel() for p in sam.parameters()),
    }
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
