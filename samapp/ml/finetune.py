"""Fine-tuning SAM's mask decoder (and optionally its prompt encoder) on stored embeddings.

The data engine's model-in-the-loop step: a project's accepted masks and the image
embeddings already stored for them are all it needs. The image encoder stays frozen, so
the embeddings stay valid for the new weights and are never recomputed; a training step
only runs the prompt encoder and the mask decoder, cheap enough for a CPU.

The loss and the prompt simulation are SAM's (``click_simulation.interactive_loss``: focal:dice
20:1 on the best of the multimask outputs, IoU-head MSE, a first point or noisy box, then
corrective clicks from the error region with the previous logits as mask prompt). The
evaluation is ``evaluation.evaluate_interactive`` on the held-out embeddings: mIoU after
1, 3 and 5 clicks and NoC@85/90.

A fine-tuned version is stored as the state dict of the trained modules only
(``mask_decoder.*`` and, when trained, ``prompt_encoder.*``) in fp16: a few hundred KiB
for ``sam_tiny``, about 8 MiB for the ViT models' decoder.
"""

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from samapp.ml.click_simulation import batch_loss
from samapp.ml.embedding import ImageEmbedding
from samapp.ml.evaluation import InteractiveResult, evaluate_interactive
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import make_optimizer, optimizer_step

TRAINED_PREFIXES = ("mask_decoder.", "prompt_encoder.")
EVAL_CLICKS = 20


@dataclass(frozen=True)
class FinetuneSample:
    """One image of the fine-tuning set.

    Attributes:
      embedding: (C, h, w) float32 image embedding, as stored for the base model.
      masks: (N, S, S) bool ground-truth masks in the model's input frame (resized with
        ``ResizeLongestSide`` and zero-padded at the bottom and right, S =
        ``sam.image_encoder.img_size``), N >= 1.
    """

    embedding: Tensor
    masks: Tensor


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning hyperparameters; loss weights and prompt simulation come from
    ``TrainConfig`` (see ``train_config``).

    Attributes:
      steps: optimisation steps.
      images_per_step: images per step, drawn without replacement within each epoch.
      max_objects: objects per image per step (a random subset of larger images).
      lr: peak AdamW learning rate (linear warmup over ``warmup_steps``, cosine decay).
      train_prompt_encoder: also train the prompt encoder (the mask decoder always is).
      iterations: simulated interaction rounds per object (1 = first prompt only).
      box_probability: share of images whose first prompt is a noisy box.
      seed: seeds the image order and the simulated prompts.
    """

    steps: int = 300
    images_per_step: int = 4
    max_objects: int = 16
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    train_prompt_encoder: bool = False
    iterations: int = 3
    box_probability: float = 0.2
    seed: int = 0

    def train_config(self) -> TrainConfig:
        """The ``TrainConfig`` holding this run's loss weights and prompt simulation."""
        return replace(
            TrainConfig(),
            seed=self.seed,
            steps=self.steps,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            focal_warmup_steps=0,  # the decoder already separates objects: no dice-only phase
            iterations=self.iterations,
            box_probability=self.box_probability,
        )


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


def trained_state_dict(sam: Sam) -> dict[str, Tensor]:
    """The fine-tunable part of ``sam``'s state dict, fp16 on the CPU: what a model version
    stores. Both modules are kept even when only the decoder was trained, so a version
    fine-tuned from another version is complete on top of the base model."""
    return {
        k: v.detach().half().cpu()
        for k, v in sam.state_dict().items()
        if k.startswith(TRAINED_PREFIXES)
    }


def apply_trained_state(sam: Sam, state_dict: dict[str, Tensor]) -> Sam:
    """Load a ``trained_state_dict`` into ``sam`` in place (dtype and device of ``sam``).

    Raises:
      KeyError: a key is outside the fine-tunable modules or unknown to ``sam``, or a
        module is only partly present (a mismatched base model).
    """
    own = sam.state_dict()
    foreign = sorted(k for k in state_dict if k not in own or not k.startswith(TRAINED_PREFIXES))
    if foreign:
        raise KeyError(f"Not fine-tunable keys of this model: {foreign[:5]}")
    for prefix in TRAINED_PREFIXES:
        expected = {k for k in own if k.startswith(prefix)}
        given = {k for k in state_dict if k.startswith(prefix)}
        if given and given != expected:
            raise KeyError(f"Partial {prefix[:-1]} state: missing {sorted(expected - given)[:5]}")
    sam.load_state_dict({**own, **state_dict}, strict=True)
    return sam


def _trainable(sam: Sam, config: FinetuneConfig) -> list[torch.nn.Parameter]:
    """Freeze ``sam`` except the mask decoder (and prompt encoder); returns the trainable
    parameters."""
    sam.requires_grad_(False)
    modules: list[torch.nn.Module] = [sam.mask_decoder]
    if config.train_prompt_encoder:
        modules.append(sam.prompt_encoder)
    for module in modules:
        module.requires_grad_(True)
    return [p for module in modules for p in module.parameters()]


def finetune_step(
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[FinetuneSample],
    generator: torch.Generator,
    config: FinetuneConfig,
) -> tuple[float, float]:
    """One optimisation step of the trainable modules on ``samples``.

    Each image contributes up to ``config.max_objects`` objects, prompted as in SAM's
    interactive training; the loss is the mean over objects.

    Returns:
      The loss and the mean IoU of the final simulated masks.
    """
    train_config = config.train_config()
    device = next(sam.parameters()).device
    gts, boxes = [], []
    for sample in samples:
        gt = sample.masks.to(device)
        if gt.shape[0] > config.max_objects:
            keep = torch.randperm(gt.shape[0], generator=generator, device=device)
            gt = gt[keep[: config.max_objects]]
        gts.append(gt)
        draw = torch.rand((), generator=generator, device=device)
        boxes.append(bool(draw < config.box_probability))
    embeddings = torch.stack([sample.embedding for sample in samples]).to(device)
    loss, ious = batch_loss(sam, embeddings, gts, boxes, generator, train_config)
    optimizer_step(optimizer, loss, train_config.grad_clip)
    return loss.item(), ious.mean().item()


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
      The trained modules' fp16 state dict (see ``trained_state_dict``), the per-step loss
      and IoU curves and the wall time.
    """
    if not samples:
        raise ValueError("Fine-tuning needs at least one image with objects")
    model = copy.deepcopy(sam)
    device = next(model.parameters()).device
    params = _trainable(model, config)
    optimizer, scheduler = make_optimizer(params, config.train_config())
    generator = torch.Generator(device=device).manual_seed(config.seed)
    order = torch.Generator().manual_seed(config.seed)
    queue: list[int] = []
    result = FinetuneResult(state_dict={})
    model.train()
    started = time.monotonic()
    for step in range(1, config.steps + 1):
        batch: list[FinetuneSample] = []
        while len(batch) < min(config.images_per_step, len(samples)):
            if not queue:
                queue = torch.randperm(len(samples), generator=order).tolist()
            batch.append(samples[queue.pop()])
        loss, iou = finetune_step(model, optimizer, batch, generator, config)
        scheduler.step()
        result.loss_curve.append(loss)
        result.iou_curve.append(iou)
        if on_step is not None:
            on_step(step, loss, iou)
    result.seconds = time.monotonic() - started
    model.eval()
    result.state_dict = trained_state_dict(model)
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
