"""Adapting SAM's image encoder to a project's images: low-rank adapters or the last blocks.

A decoder fine-tuned on stored embeddings cannot recover what the frozen encoder does not
see (a new kind of texture or shape boundary). Two ways to let the encoder move, both small
enough to train on a CPU for ``sam_tiny``:

- ``"lora"``: low-rank adapters (LoRA, Hu et al. 2021) on the attention ``qkv`` and ``proj``
  linears of the last ``blocks`` attention blocks: ``W x + (alpha / r) B A x`` with
  A (r, in) Kaiming-initialised and B (out, r) zero, so training starts from the base
  model exactly. A version stores only A and B (``scale`` folded into B), and loading
  merges ``W += B A`` into the base weights: the adapted encoder runs at the base model's
  speed, and the SDPA patch (``fast_encoder``) applies unchanged.
- ``"blocks"``: every parameter of the last ``blocks`` blocks and of the neck is trained
  and stored in full.

``"frozen"`` keeps the encoder as it is (the decoder-only fine-tuning on stored
embeddings). Works with any encoder whose attention modules expose ``qkv`` and ``proj``
``nn.Linear`` children (SAM's ViT encoders, ``sam_tiny``, MobileSAM's TinyViT).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import Tensor, nn

from samapp.ml.model_keys import ENCODER_MODES, EncoderMode

ENCODER_PREFIX = "image_encoder."
LORA_TARGETS = ("qkv", "proj")
LORA_SUFFIXES = (".lora_a", ".lora_b")


@dataclass(frozen=True)
class EncoderAdaptConfig:
    """How the image encoder is adapted.

    Attributes:
      mode: "frozen", "lora" or "blocks" (module docstring).
      blocks: how many of the last attention blocks adapt; 0 = all of them.
      rank: LoRA rank r.
      alpha: LoRA scale numerator (the update is ``alpha / rank * B A``).
      lr_scale: the encoder's learning rate relative to the decoder's.
    """

    mode: EncoderMode = "frozen"
    blocks: int = 0
    rank: int = 4
    alpha: float = 8.0
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ENCODER_MODES:
            raise ValueError(f"Unknown encoder mode {self.mode!r}; use one of {ENCODER_MODES}")
        if self.blocks < 0 or self.rank < 1:
            raise ValueError("blocks must be >= 0 and rank >= 1")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    Maps (..., in_features) float32 to (..., out_features) float32:
    ``base(x) + scale * x A^T B^T`` with A (rank, in_features), B (out_features, rank).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        weight = base.weight
        self.lora_a = nn.Parameter(weight.new_empty(rank, base.in_features))
        self.lora_b = nn.Parameter(weight.new_zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    def delta(self) -> Tensor:
        """(out_features, in_features) float32: the update this adapter adds to W."""
        return (self.lora_b * self.scale) @ self.lora_a


def attention_modules(sam: Sam) -> list[tuple[str, nn.Module]]:
    """The image encoder's attention modules (those with ``qkv`` and ``proj`` linears), in
    forward order, with their names relative to ``sam.image_encoder``."""
    return [
        (name, module)
        for name, module in sam.image_encoder.named_modules()
        if all(isinstance(getattr(module, t, None), nn.Linear | LoRALinear) for t in LORA_TARGETS)
    ]


def _last(items: list[tuple[str, nn.Module]], blocks: int) -> list[tuple[str, nn.Module]]:
    return items[-blocks:] if blocks else items


def _block_of(name: str) -> str:
    """The block an attention module belongs to: its name minus the trailing ``.attn``."""
    return name.rsplit(".", 1)[0] if "." in name else name


def adapt_encoder(sam: Sam, config: EncoderAdaptConfig) -> list[nn.Parameter]:
    """Freeze ``sam``'s image encoder except what ``config`` adapts (in place): wrap the
    targeted linears in ``LoRALinear`` for "lora", unfreeze the last blocks and the neck
    for "blocks". Returns the encoder parameters to train (none for "frozen")."""
    encoder = sam.image_encoder
    encoder.requires_grad_(False)
    chosen = _last(attention_modules(sam), config.blocks)
    if config.mode == "lora":
        params: list[nn.Parameter] = []
        for _, module in chosen:
            for target in LORA_TARGETS:
                adapter = LoRALinear(getattr(module, target), config.rank, config.alpha)
                setattr(module, target, adapter)
                params += [adapter.lora_a, adapter.lora_b]
        return params
    if config.mode == "blocks":
        names = {_block_of(name) for name, _ in chosen}
        modules = [m for n, m in encoder.named_modules() if n in names]
        neck = getattr(encoder, "neck", None)
        if isinstance(neck, nn.Module):
            modules.append(neck)
        for module in modules:
            module.requires_grad_(True)
        return [p for p in encoder.parameters() if p.requires_grad]
    return []


def encoder_state_dict(sam: Sam, config: EncoderAdaptConfig) -> dict[str, Tensor]:
    """What a version stores of an encoder adapted by ``adapt_encoder``, fp16 on the CPU.

    "lora": per adapted linear, ``image_encoder.<path>.lora_a`` (rank, in) and
    ``.lora_b`` (out, rank) with the scale folded into B. "blocks": the trained
    parameters under their own names. "frozen": nothing.
    """
    state: dict[str, Tensor] = {}
    if config.mode == "lora":
        for name, module in sam.image_encoder.named_modules():
            if isinstance(module, LoRALinear):
                key = f"{ENCODER_PREFIX}{name}"
                state[f"{key}.lora_a"] = module.lora_a.detach()
                state[f"{key}.lora_b"] = (module.lora_b * module.scale).detach()
    elif config.mode == "blocks":
        state = {
            f"{ENCODER_PREFIX}{name}": p.detach()
            for name, p in sam.image_encoder.named_parameters()
            if p.requires_grad
        }
    return {k: v.half().cpu() for k, v in state.items()}


def unwrap_lora(sam: Sam) -> Sam:
    """Replace every ``LoRALinear`` of ``sam``'s image encoder by its base linear with the
    update merged into the weight (in place); returns ``sam``."""
    for module in list(sam.image_encoder.modules()):
        for target in LORA_TARGETS:
            adapter = getattr(module, target, None)
            if isinstance(adapter, LoRALinear):
                with torch.no_grad():
                    adapter.base.weight.add_(adapter.delta().to(adapter.base.weight.dtype))
                setattr(module, target, adapter.base)
    return sam


def is_lora_key(key: str) -> bool:
    return key.endswith(LORA_SUFFIXES)


def lora_pairs(state_dict: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"image_encoder.<path>.weight": (A, B)}`` for the LoRA factors in ``state_dict``.

    Raises:
      KeyError: a factor without its partner.
    """
    pairs: dict[str, tuple[Tensor, Tensor]] = {}
    for key in state_dict:
        if key.endswith(".lora_a"):
            stem = key.removesuffix(".lora_a")
            if f"{stem}.lora_b" not in state_dict:
                raise KeyError(f"LoRA factor {key} without its lora_b")
            pairs[f"{stem}.weight"] = (state_dict[key], state_dict[f"{stem}.lora_b"])
        elif key.endswith(".lora_b") and key.removesuffix(".lora_b") + ".lora_a" not in state_dict:
            raise KeyError(f"LoRA factor {key} without its lora_a")
    return pairs


@torch.no_grad()
def merge_lora(sam: Sam, state_dict: dict[str, Tensor], sign: float = 1.0) -> Sam:
    """Add (``sign`` 1) or remove (``sign`` -1) the stored LoRA updates ``B A`` of
    ``state_dict`` to or from ``sam``'s linear weights in place (dtype and device of
    ``sam``); returns ``sam``.

    Raises:
      KeyError: a factor names a weight ``sam`` does not have, or lacks its partner.
      ValueError: a factor's shape does not fit its weight.
    """
    own = dict(sam.named_parameters())
    for key, (a, b) in lora_pairs(state_dict).items():
        if key not in own:
            raise KeyError(f"LoRA factors for an unknown weight {key}")
        weight = own[key]
        if (b.shape[0], a.shape[1]) != tuple(weight.shape) or a.shape[0] != b.shape[1]:
            raise ValueError(f"LoRA factors {tuple(a.shape)}, {tuple(b.shape)} do not fit {key}")
        delta = b.to(weight.device, torch.float32) @ a.to(weight.device, torch.float32)
        weight.add_((sign * delta).to(weight.dtype))
    return sam
