"""SAM 2.1 image models, built by the ``sam2`` package from the configs it ships.

``build_sam2_model(config)`` returns the package's ``SAM2Base`` (random init, eval mode, on the
CPU), so ``SAM2ImagePredictor`` and ``SAM2AutomaticMaskGenerator`` work on it unchanged. The
official checkpoints hold ``{"model": state_dict}``; ``sam2_state_dict`` unwraps them.

Only the image path is used here (image encoder, prompt encoder, mask decoder); the memory
modules of the video predictor are built too, because the checkpoints load strictly.
"""

from typing import Any

import torch
from sam2.modeling.sam2_base import SAM2Base

# Registry key -> config name inside the sam2 package (hydra searches ``pkg://sam2``).
SAM2_CONFIGS = {
    f"sam2.1_hiera_{size}": f"configs/sam2.1/sam2.1_hiera_{short}.yaml"
    for size, short in (("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("large", "l"))
}


def build_sam2_model(config: str) -> SAM2Base:
    """Build the SAM 2 model of ``config`` (a path inside the sam2 package) with random weights.

    With the package's own image post-processing settings (``build_sam2``'s
    ``apply_postprocessing``: a single-mask output whose stability is below 0.98 falls back to
    the best multimask output), so single-mask predictions match ``SAM2ImagePredictor``'s.

    Returns:
      ``SAM2Base`` in eval mode, float32 on the CPU. For the 1024 px configs its image encoder
      gives ``image_embed`` (1, 256, 64, 64) and ``high_res_feats`` (1, 32, 256, 256),
      (1, 64, 128, 128) per image (``sam2_embedding.compute_sam2_features``).
    """
    from sam2.build_sam import build_sam2

    model: SAM2Base = build_sam2(config, ckpt_path=None, device="cpu", mode="eval")
    return model


def build_sam2_model_for(key: str) -> SAM2Base:
    """``build_sam2_model`` for the official checkpoint ``key`` (a key of ``SAM2_CONFIGS``)."""
    return build_sam2_model(SAM2_CONFIGS[key])


def sam2_state_dict(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The state dict of a loaded SAM 2 checkpoint: the official files wrap it in ``"model"``;
    a project-trained one may be the bare state dict."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        return checkpoint["model"]
    if isinstance(checkpoint, dict):
        return checkpoint
    raise RuntimeError(f"Not a SAM 2 checkpoint: {type(checkpoint).__name__}")


def is_sam2(model: Any) -> bool:
    """True for a SAM 2 model (``SAM2Base``), False for SAM's ``Sam``."""
    return isinstance(model, SAM2Base)


def high_res_shapes(model: SAM2Base) -> list[tuple[int, int, int]]:
    """(C, h, w) of the decoder's two high-resolution feature maps, finest first: for the
    1024 px configs (32, 256, 256) and (64, 128, 128)."""
    side = model.image_size // model.backbone_stride
    decoder = model.sam_mask_decoder
    channels = [decoder.conv_s0.out_channels, decoder.conv_s1.out_channels]
    return [(channels[0], 4 * side, 4 * side), (channels[1], 2 * side, 2 * side)]
