"""Fine-tuning SAM's mask decoder (and optionally its prompt and image encoders).

The data engine's model-in-the-loop step. With the image encoder frozen (the default),
a project's accepted masks and the image embeddings already stored for them are all it
needs: the embeddings stay valid for the new weights and are never recomputed, and a
training step only runs the prompt encoder and the mask decoder, cheap enough for a CPU.
With ``encoder_mode`` "lora" or "blocks" (``samapp.ml.encoder_adapt``) the samples carry
the images' encoder inputs instead, each step runs the image encoder with gradients into
its adapters or last blocks, and the version's embeddings must be computed again.

The loss and the prompt simulation are SAM's (``click_simulation.interactive_loss``: focal:dice
20:1 on the best of the multimask outputs, IoU-head MSE, a first point or noisy box, then
corrective clicks from the error region with the previous logits as mask prompt). The
evaluation is ``evaluation.evaluate_interactive`` on the held-out embeddings: mIoU after
1, 3 and 5 clicks and NoC@85/90.

A fine-tuned version is stored as the state dict of the trained modules only
(``mask_decoder.*``, ``prompt_encoder.*`` and the encoder's adapters or trained blocks
under ``image_encoder.*``) in fp16: a few hundred KiB for ``sam_tiny``, about 8 MiB for
the ViT models' decoder.
"""

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from samapp.ml.augment import flip_sample, paste_objects
from samapp.ml.click_simulation import batch_loss
from samapp.ml.embedding import ImageEmbedding, to_rgb_array
from samapp.ml.encoder_adapt import (
    ENCODER_PREFIX,
    EncoderAdaptConfig,
    adapt_encoder,
    encoder_state_dict,
    is_lora_key,
    lora_pairs,
    merge_lora,
)
from samapp.ml.evaluation import InteractiveResult, evaluate_interactive
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import make_optimizer, optimizer_step

TRAINED_PREFIXES = ("mask_decoder.", "prompt_encoder.")
EVAL_CLICKS = 20


# A training sample of either family (``FinetuneSample``, ``sam2_finetune.Sam2FinetuneSample``).
SampleT = TypeVar("SampleT")


@dataclass(frozen=True)
class FinetuneSample:
    """One image of the fine-tuning set.

    Attributes:
      embedding: (C, h, w) float32 image embedding, as stored for the base model (None
        when the encoder is trained).
      masks: (N, S, S) bool ground-truth masks in the model's input frame (resized with
        ``ResizeLongestSide`` and zero-padded at the bottom and right, S =
        ``sam.image_encoder.img_size``), N >= 1.
      pixels: (3, S, S) float32 encoder input (``Sam.preprocess`` of the resized image),
        what a step with a trained encoder encodes; None for the decoder alone.
      input_size: (h, w) of the image inside ``pixels`` (the rest is padding).
    """

    embedding: Tensor | None
    masks: Tensor
    pixels: Tensor | None = None
    input_size: tuple[int, int] = (0, 0)


# SAM's recipe as fine-tuning runs it: a short schedule from a trained model, whose decoder
# already separates objects (no dice-only phase), and three simulated interaction rounds.
FINETUNE_RECIPE = replace(
    TrainConfig(),
    steps=300,
    images_per_step=4,
    lr=1e-3,
    warmup_steps=20,
    focal_warmup_steps=0,
    iterations=3,
    box_probability=0.2,
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning hyperparameters.

    Attributes:
      recipe: the schedule, loss weights and prompt simulation (``TrainConfig``: ``steps``,
        ``images_per_step`` drawn without replacement within each epoch, peak AdamW ``lr``
        with linear warmup over ``warmup_steps`` and cosine decay, ``iterations`` simulated
        interaction rounds per object, ``box_probability``, ``seed``...).
      max_objects: objects per image per step (a random subset of larger images).
      train_prompt_encoder: also train the prompt encoder (the mask decoder always is).
      augment: with a trained encoder, show each image flipped and (when square)
        transposed at random: the encoder sees the project's few images in 4 to 8 poses.
      copy_paste: with a trained encoder, paste 1 to ``copy_paste`` objects of another
        image of the step into each image (``augment.paste_objects``): the project's few
        images make new scenes at every step, and the encoder overfits them less
        (``docs/models.md``). 0 turns it off.
      encoder: how the image encoder is adapted (``EncoderAdaptConfig``; "frozen" trains
        the decoder on stored embeddings).
      decoder_lr_scale: the decoder modules' learning rate relative to ``lr``; 0 keeps
        them frozen (only the encoder adapts).
    """

    recipe: TrainConfig = FINETUNE_RECIPE
    max_objects: int = 16
    train_prompt_encoder: bool = False
    augment: bool = True
    copy_paste: int = 2
    encoder: EncoderAdaptConfig = field(default_factory=EncoderAdaptConfig)
    decoder_lr_scale: float = 1.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "FinetuneConfig":
        """The config of flat options, as a training job stores them: ``TrainConfig``'s names
        (``steps``, ``lr``...) for the recipe, the encoder's prefixed ``encoder_``
        (``encoder_mode``, ``encoder_rank``...); other names are ignored."""

        def picked(names: set[str], prefix: str = "") -> dict[str, Any]:
            return {n: options[prefix + n] for n in names if prefix + n in options}

        own = {f.name for f in fields(cls)} - {"recipe", "encoder"}
        return cls(
            recipe=replace(FINETUNE_RECIPE, **picked({f.name for f in fields(TrainConfig)})),
            encoder=EncoderAdaptConfig(
                **picked({f.name for f in fields(EncoderAdaptConfig)}, "encoder_")
            ),
            **picked(own),
        )

    @property
    def trains_encoder(self) -> bool:
        return self.encoder.mode != "frozen"


@dataclass
class FinetuneResult:
    """What ``finetune`` produced.

    Attributes:
      state_dict: the trained modules' parameters and buffers (keys prefixed
        ``mask_decoder.`` / ``prompt_encoder.``), fp16 on the CPU.
      loss_curve: (steps,) training loss of each step.
      iou_curve: (steps,) mean IoU of the final simulated masks of each step.
      seconds: wall time of the training loop.
    """

    state_dict: dict[str, Tensor]
    loss_curve: list[float] = field(default_factory=list)
    iou_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0


def masks_to_input_frame(masks: np.ndarray, img_size: int) -> Tensor:
    """(N, H, W) bool masks in the original frame -> (N, S, S) bool in the input frame.

    Resizes as ``ResizeLongestSide(img_size)`` resizes the image (nearest neighbour, so
    masks stay binary) and pads with background to ``img_size`` at the bottom and right,
    as ``Sam.preprocess`` pads the image.
    """
    n, h, w = masks.shape
    new_h, new_w = ResizeLongestSide.get_preprocess_shape(h, w, img_size)
    out = np.zeros((n, img_size, img_size), bool)
    for i, mask in enumerate(masks):
        resized = cv2.resize(mask.astype(np.uint8), (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        out[i, :new_h, :new_w] = resized.astype(bool)
    return torch.from_numpy(out)


def make_sample(
    embedding: ImageEmbedding, masks: Sequence[np.ndarray], img_size: int
) -> FinetuneSample:
    """A ``FinetuneSample`` from a stored embedding and its objects' (H, W) bool masks in
    the original frame (objects that vanish at the input resolution are dropped)."""
    gt = masks_to_input_frame(np.stack([np.asarray(m, bool) for m in masks]), img_size)
    return FinetuneSample(
        embedding=embedding.embedding.float().cpu(), masks=gt[gt.flatten(1).any(1)]
    )


def encoder_input(sam: Sam, image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 RGB -> (3, S, S) float32 encoder input on the CPU, as
    ``SamPredictor.set_image`` prepares it (``ResizeLongestSide``, normalised, padded)."""
    resized = ResizeLongestSide(sam.image_encoder.img_size).apply_image(to_rgb_array(image))
    pixels = torch.as_tensor(resized).permute(2, 0, 1).float()
    mean, std = sam.pixel_mean.cpu(), sam.pixel_std.cpu()
    size = sam.image_encoder.img_size
    out = torch.zeros(3, size, size)
    out[:, : pixels.shape[1], : pixels.shape[2]] = (pixels - mean) / std
    return out


def make_image_sample(sam: Sam, image: np.ndarray, masks: Sequence[np.ndarray]) -> FinetuneSample:
    """A ``FinetuneSample`` for a trained encoder: the (H, W, 3) uint8 image's encoder
    input and its objects' (H, W) bool masks in the original frame."""
    size = sam.image_encoder.img_size
    gt = masks_to_input_frame(np.stack([np.asarray(m, bool) for m in masks]), size)
    h, w = ResizeLongestSide.get_preprocess_shape(image.shape[0], image.shape[1], size)
    return FinetuneSample(
        embedding=None,
        masks=gt[gt.flatten(1).any(1)],
        pixels=encoder_input(sam, image),
        input_size=(h, w),
    )


def trained_state_dict(sam: Sam) -> dict[str, Tensor]:
    """The fine-tunable part of ``sam``'s state dict, fp16 on the CPU: what a version
    stores of its decoder. Both modules are kept even when only the decoder was trained, so
    a version fine-tuned from another version is complete on top of the base model (its
    encoder's part comes from ``encoder_adapt.encoder_state_dict``)."""
    return {
        k: v.detach().half().cpu()
        for k, v in sam.state_dict().items()
        if k.startswith(TRAINED_PREFIXES)
    }


def has_encoder_state(state_dict: dict[str, Tensor]) -> bool:
    """Whether a version's state dict changes the image encoder (its embeddings differ
    from the base model's)."""
    return any(k.startswith(ENCODER_PREFIX) for k in state_dict)


def apply_trained_state(sam: Sam, state_dict: dict[str, Tensor]) -> Sam:
    """Load a version's state dict into ``sam`` in place (dtype and device of ``sam``):
    the decoder modules' and encoder blocks' tensors replace ``sam``'s, then the encoder's
    LoRA factors are merged into their weights.

    Raises:
      KeyError: a key is unknown to ``sam``, or a decoder module is only partly present
        (a mismatched base model).
    """
    own = sam.state_dict()
    plain = {k: v for k, v in state_dict.items() if not is_lora_key(k)}
    trained_keys_check(own, plain, (*TRAINED_PREFIXES, ENCODER_PREFIX), TRAINED_PREFIXES)
    sam.load_state_dict({**own, **plain}, strict=True)
    return merge_lora(sam, {k: v for k, v in state_dict.items() if is_lora_key(k)})


def trained_keys_check(
    own: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    allowed: tuple[str, ...],
    modules: tuple[str, ...],
) -> None:
    """Check a trained ``state`` against the model's ``own`` state dict before loading it.

    Raises:
      KeyError: a key of ``state`` is unknown to ``own`` or starts with none of ``allowed``,
        or a module (a prefix of ``modules``) is only partly present (a mismatched base model).
    """
    foreign = sorted(k for k in state if k not in own or not k.startswith(allowed))
    if foreign:
        raise KeyError(f"Not fine-tunable keys of this model: {foreign[:5]}")
    for prefix in modules:
        expected = {k for k in own if k.startswith(prefix)}
        given = {k for k in state if k.startswith(prefix)}
        if given and given != expected:
            raise KeyError(f"Partial {prefix[:-1]} state: missing {sorted(expected - given)[:5]}")


def combine_states(parent: dict[str, Tensor], child: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state of a version trained from a version: ``child`` was trained on the model
    ``parent`` describes, so its decoder and full encoder tensors win, LoRA factors of a
    weight both changed are stacked along the rank (``[B_p B_c] [A_p; A_c] = B_p A_p +
    B_c A_c``), and the parent's factors of a weight the child stores in full are dropped
    (already inside it)."""
    out = {k: v for k, v in parent.items() if not is_lora_key(k) and k not in child}
    out.update({k: v for k, v in child.items() if not is_lora_key(k)})
    parent_pairs, child_pairs = lora_pairs(parent), lora_pairs(child)
    for weight in parent_pairs.keys() | child_pairs.keys():
        if weight in child:
            continue
        pairs = [p[weight] for p in (parent_pairs, child_pairs) if weight in p]
        stem = weight.removesuffix(".weight")
        out[f"{stem}.lora_a"] = torch.cat([a for a, _ in pairs], dim=0)
        out[f"{stem}.lora_b"] = torch.cat([b for _, b in pairs], dim=1)
    return out


def _trainable(sam: Sam, config: FinetuneConfig) -> list[dict[str, object]]:
    """Freeze ``sam`` except the mask decoder (and prompt encoder, and the encoder's
    adapters or last blocks); returns the optimizer's parameter groups."""
    sam.requires_grad_(False)
    modules: list[torch.nn.Module] = [sam.mask_decoder]
    if config.train_prompt_encoder:
        modules.append(sam.prompt_encoder)
    groups: list[dict[str, object]] = []
    if config.decoder_lr_scale > 0 or not config.trains_encoder:
        for module in modules:
            module.requires_grad_(True)
        params = [p for module in modules for p in module.parameters()]
        groups.append({"params": params, "lr": config.recipe.lr * config.decoder_lr_scale})
    encoder = config.encoder
    encoder_params = adapt_encoder(sam, encoder)
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.recipe.lr * encoder.lr_scale})
    return groups


def finetune_step(
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[FinetuneSample],
    generator: torch.Generator,
    config: FinetuneConfig,
) -> tuple[float, float]:
    """One optimisation step of the trainable modules on ``samples``.

    Each image contributes up to ``config.max_objects`` objects, prompted as in SAM's
    interactive training; the loss is the mean over objects. With a trained encoder the
    samples' pixels are encoded here, with gradients into the encoder's trained part.

    Returns:
      The loss and the mean IoU of the final simulated masks.
    """
    device = next(sam.parameters()).device
    gts, boxes, inputs = [], [], []
    for index, sample in enumerate(samples):
        if config.trains_encoder:
            pixels, gt = _augmented(samples, index, config, generator)
            inputs.append(pixels)
        else:
            gt = sample.masks.to(device)
        if gt.shape[0] > config.max_objects:
            keep = torch.randperm(gt.shape[0], generator=generator, device=device)
            gt = gt[keep[: config.max_objects]]
        gts.append(gt)
        draw = torch.rand((), generator=generator, device=device)
        boxes.append(bool(draw < config.recipe.box_probability))
    if config.trains_encoder:
        embeddings = sam.image_encoder(torch.stack(inputs))
    else:
        embeddings = torch.stack([_required(s.embedding) for s in samples]).to(device)
    loss, ious = batch_loss(sam, embeddings, gts, boxes, generator, config.recipe)
    optimizer_step(optimizer, loss, config.recipe.grad_clip)
    return loss.item(), ious.mean().item()


def _augmented(
    samples: Sequence[FinetuneSample],
    index: int,
    config: FinetuneConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Sample ``index``'s (3, S, S) encoder input and (N, S, S) masks as the step shows them:
    flipped (``config.augment``), with objects of the next sample of the step pasted in
    (``config.copy_paste``)."""
    device = generator.device
    sample = samples[index]
    pixels, masks = _required(sample.pixels).to(device), sample.masks.to(device)
    if config.augment:
        pixels, masks = flip_sample(pixels, masks, sample.input_size, generator)
    other = samples[(index + 1) % len(samples)]
    # A step can hold one image twice (its draw crosses an epoch's end): never paste into itself.
    if config.copy_paste and other is not sample:
        source = (_required(other.pixels).to(device), other.masks.to(device))
        count = 1 + int(torch.randint(config.copy_paste, (), generator=generator, device=device))
        pixels, masks = paste_objects((pixels, masks, sample.input_size), source, count, generator)
    return pixels, masks


def _required(tensor: Tensor | None) -> Tensor:
    if tensor is None:
        raise ValueError("A sample lacks the input this fine-tuning mode trains on")
    return tensor


def finetune_loop(
    samples: Sequence[SampleT],
    recipe: TrainConfig,
    device: torch.device,
    train_batch: Callable[[list[SampleT], torch.Generator], tuple[float, float]],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    on_step: Callable[[int, float, float], None] | None = None,
) -> FinetuneResult:
    """Run ``recipe.steps`` steps of ``train_batch`` (which steps the optimizer and returns
    the batch's loss and mean IoU), each on ``recipe.images_per_step`` samples drawn without
    replacement within each epoch; image order and prompts are seeded by ``recipe.seed``.
    Returns the loss and IoU curves and the wall time (``state_dict`` left empty)."""
    generator = torch.Generator(device=device).manual_seed(recipe.seed)
    order = torch.Generator().manual_seed(recipe.seed)
    queue: list[int] = []
    result = FinetuneResult(state_dict={})
    started = time.monotonic()
    for step in range(1, recipe.steps + 1):
        batch: list[SampleT] = []
        while len(batch) < min(recipe.images_per_step, len(samples)):
            if not queue:
                queue = torch.randperm(len(samples), generator=order).tolist()
            batch.append(samples[queue.pop()])
        loss, iou = train_batch(batch, generator)
        scheduler.step()
        result.loss_curve.append(loss)
        result.iou_curve.append(iou)
        if on_step is not None:
            on_step(step, loss, iou)
    result.seconds = time.monotonic() - started
    return result


def finetune(
    sam: Sam,
    samples: Sequence[FinetuneSample],
    config: FinetuneConfig = FinetuneConfig(),
    on_step: Callable[[int, float, float], None] | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of ``sam`` on ``samples``; ``sam`` itself is left unchanged.

    Arguments:
      sam: the current model (base or an earlier version); its image encoder produced the
        samples' embeddings.
      samples: the training split, at least one image.
      config: hyperparameters.
      on_step: called after each step with (step, loss, iou), step counting from 1.

    Returns:
      The trained modules' fp16 state dict (``trained_state_dict`` plus, with a trained
      encoder, ``encoder_state_dict``; relative to ``sam``), the per-step loss and IoU
      curves and the wall time.
    """
    if not samples:
        raise ValueError("Fine-tuning needs at least one image with objects")
    model = copy.deepcopy(sam)
    device = next(model.parameters()).device
    groups = _trainable(model, config)
    optimizer, scheduler = make_optimizer(groups, config.recipe)
    model.train()
    result = finetune_loop(
        samples,
        config.recipe,
        device,
        lambda batch, generator: finetune_step(model, optimizer, batch, generator, config),
        scheduler,
        on_step,
    )
    model.eval()
    result.state_dict = {
        **trained_state_dict(model),
        **encoder_state_dict(model, config.encoder),
    }
    return result


def interactive_metrics(result: InteractiveResult) -> dict[str, float | int]:
    """The evaluation report of a model version: mIoU after 1, 3 and 5 clicks, NoC@85
    and NoC@90 (over the evaluated clicks), and the numbers of objects and clicks."""
    clicks = result.ious.shape[1]
    return {
        "objects": int(result.ious.shape[0]),
        "clicks": int(clicks),
        **{f"miou_{k}": round(result.miou(min(k, clicks)), 4) for k in (1, 3, 5)},
        "noc_85": round(result.noc(0.85), 2),
        "noc_90": round(result.noc(0.90), 2),
    }


def evaluate_embeddings(
    sam: Sam,
    embeddings: Sequence[ImageEmbedding],
    masks: Sequence[Sequence[np.ndarray]],
    clicks: int | None = None,
) -> dict[str, float | int]:
    """``interactive_metrics`` of ``sam`` on stored embeddings and their objects' (H, W)
    bool masks in the original frame (the held-out split), over ``clicks`` clicks
    (default ``EVAL_CLICKS``)."""
    result = evaluate_interactive(sam, embeddings, masks, clicks or EVAL_CLICKS)
    return interactive_metrics(result)
