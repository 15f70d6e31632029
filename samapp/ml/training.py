"""SAM's training loop: optimisation steps on generated scenes (the whole model) or on stored
image embeddings (decoder fine-tuning), resumable checkpoints, and the training of the
project's tiny models, ``sam_tiny`` and ``sam2_tiny`` (SAM 2 through ``sam2_adapter.Sam2AsSam``).

The losses are in ``losses``, the simulated interactive prompting in ``click_simulation``,
the hyperparameters in ``train_config``. Ground-truth masks are in the model's input frame:
(N, S, S) bool with ``S = sam.image_encoder.img_size``, image pixels at the top left.
"""

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import Tensor, nn
from tqdm import tqdm

from samapp.ml.click_simulation import batch_loss
from samapp.ml.evaluation import evaluate_sam_tiny
from samapp.ml.registry import Family
from samapp.ml.sam2_adapter import Sam2AsSam
from samapp.ml.sam2_tiny import (
    SAM2_TINY_CHECKPOINT,
    SAM2_TINY_CONFIG,
    build_sam2_tiny,
    warm_start_from_sam_tiny,
)
from samapp.ml.synthetic import SCENE_SIZE, Style, generate_scene
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, SAM_TINY_CONFIG, build_sam_tiny
from samapp.ml.train_config import TrainConfig


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
      sam: SAM's ``Sam``, or a SAM 2 model behind ``Sam2AsSam``.
      images: (B, 3, S, S) float32 RGB in 0..255, S = sam.image_encoder.img_size.
      gts: B tensors (N_i, S, S) bool, the objects of each image.

    Returns:
      The loss (mean over objects) and the mean IoU of the final picked masks.
    """
    if isinstance(sam, Sam2AsSam):
        embeddings, high_res = sam.encode(images)
    else:
        embeddings, high_res = sam.image_encoder(sam.preprocess(images)), None
    return embeddings_step(sam, optimizer, embeddings, gts, generator, config, high_res)


def embeddings_step(
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    embeddings: Tensor,
    gts: list[Tensor],
    generator: torch.Generator,
    config: TrainConfig,
    high_res: list[Tensor] | None = None,
) -> tuple[float, float]:
    """One optimisation step from image embeddings: simulated prompting on every object,
    backward, gradient clipping, ``optimizer.step()``. With stored embeddings and an
    optimizer over the mask decoder only, this fine-tunes the decoder alone.

    Arguments:
      embeddings: (B, C, h, w) float32 image embeddings (with or without grad).
      gts: B tensors (N_i, S, S) bool, the objects of each image in the input frame.
      high_res: SAM 2's high-resolution maps of the B images (``batch_loss``); None for SAM.

    Returns:
      The loss (mean over objects) and the mean IoU of the final picked masks.
    """
    use_box = torch.rand(len(gts), generator=generator, device=embeddings.device)
    boxes = [bool(draw < config.box_probability) for draw in use_box]
    loss, ious = batch_loss(sam, embeddings, gts, boxes, generator, config, high_res)
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
    params: list[torch.nn.Parameter] | list[dict[str, object]], config: TrainConfig
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

    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train")
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


def save_weights(model: nn.Module, path: Path) -> None:
    """Write the model's state dict in fp16 (what ``build_sam_tiny`` and ``build_sam2_tiny``
    load, as float32)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().half().cpu() for k, v in model.state_dict().items()}, path)


@dataclass(frozen=True)
class TinyModel:
    """One of the project's tiny models: its builder (random init, or the weights file
    given), its dimensions (a dataclass, written into the metrics), its committed
    checkpoint and that checkpoint's recipe."""

    name: str
    build: Callable[[Path | None], Any]
    model_config: Any
    checkpoint: Path
    recipe: TrainConfig
    # Applied to the seeded init before training (after the attention init).
    warm_start: Callable[[Any], None] | None = None


TINY_MODELS = {
    "sam": TinyModel(
        "sam_tiny", build_sam_tiny, SAM_TINY_CONFIG, SAM_TINY_CHECKPOINT, TrainConfig()
    ),
    # sam_tiny's recipe, from sam_tiny's decoder (``warm_start_from_sam_tiny``).
    "sam2": TinyModel(
        "sam2_tiny",
        build_sam2_tiny,
        SAM2_TINY_CONFIG,
        SAM2_TINY_CHECKPOINT,
        TrainConfig(steps=7_000),
        warm_start_from_sam_tiny,
    ),
}


def train_sam_tiny(
    out: Path,
    config: TrainConfig,
    resume: bool = False,
    max_seconds: float | None = None,
    progress: bool = True,
    device: str = "cpu",
    family: Family = "sam",
) -> dict[str, object] | None:
    """Train ``sam_tiny`` (``family`` "sam") or ``sam2_tiny`` ("sam2") from a seeded init,
    then write its weights and metrics.

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
    tiny = TINY_MODELS[family]
    model = tiny.build(None)
    trainee = model if family == "sam" else Sam2AsSam(model)
    init_decoder_attention(trainee, config.attention_init_gain)
    if tiny.warm_start is not None:
        tiny.warm_start(model)
    trainee = trainee.to(device)
    result = train(trainee, config, state_path, resume, max_seconds, progress)
    if not result.finished:
        return None
    save_weights(model, out)
    metrics = write_metrics(out, config, result.seconds, result.cpu_seconds, family)
    state_path.unlink()
    return metrics


def write_metrics(
    out: Path, config: TrainConfig, seconds: float, cpu_seconds: float, family: Family = "sam"
) -> dict[str, object]:
    """Evaluate the weights in ``out`` on the held-out set and write ``<stem>.json``:
    the interactive metrics (``evaluation.evaluate_sam_tiny``), the training wall-clock
    and process CPU seconds, the recipe and the model's dimensions. Returns what was
    written."""
    tiny = TINY_MODELS[family]
    model = tiny.build(out)
    metrics = {
        **evaluate_sam_tiny(model),
        "training_seconds": round(seconds, 1),
        "training_cpu_seconds": round(cpu_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "seed": config.seed,
        "train_config": asdict(config),
        "model_config": asdict(tiny.model_config),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
