"""The project's own tiny SAM 2: the sam2 package's SAM 2.1 Hiera-T config with small dimensions.

``build_sam2_tiny`` composes the package's own ``sam2.1_hiera_t.yaml`` with overrides (a Hiera
trunk of 5 blocks from 32 channels, a 64-channel FPN neck, a one-layer memory attention) and
builds it with ``build_sam2``, so every SAM 2.1 flag (high-resolution features in the decoder,
sigmoid IoU head, object-score token, dynamic multimask fallback) is the package's. The mask
decoder is then rebuilt with the package's ``MaskDecoder`` at ``sam_tiny``'s decoder size
(``SAM2Base`` fixes its MLP at 2048 and its heads at 8, too wide for a 64-channel decoder to
train on a CPU budget), and each of the neck's lateral convs gets the package's
``LayerNorm2d`` (``TinySam2Config.neck_norm``). ``SAM2ImagePredictor``,
``SAM2AutomaticMaskGenerator`` (given the feature sizes: ``sam2_embedding.feature_sizes``) and
the project's SAM 2 paths (``sam2_embedding``, ``sam2_onnx``, ``sam2_automatic``,
``sam2_finetune``) work on it unchanged.

It reads the generated 256 px scenes at their own size: a 16x16 image embedding, high-resolution
maps of 64x64 and 32x32, 64x64 low-resolution mask logits. The memory modules are built (the
state dict is a complete ``SAM2Base``) but never trained: the model is for images only.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam2_utils import LayerNorm2d

from samapp.ml.bundled import SAM2_TINY_CHECKPOINT as SAM2_TINY_CHECKPOINT
from samapp.ml.sam2_models import SAM2_CONFIGS, sam2_state_dict
from samapp.ml.tiny import (
    SAM_TINY_CHECKPOINT,
    TinyDecoderConfig,
    tiny_decoder_arguments,
    tune_decoder_init,
)

# The hydra config the tiny model overrides.
BASE_CONFIG = SAM2_CONFIGS["sam2.1_hiera_tiny"]


@dataclass(frozen=True)
class TinySam2Config(TinyDecoderConfig):
    """Dimensions of a tiny SAM 2; the defaults are the committed ``sam2_tiny``. The decoder's
    are ``sam_tiny``'s (``TinyDecoderConfig``), whose weights it starts from; its width is
    ``hidden_dim``."""

    image_size: int = 256
    # Hiera trunk: 4 stages (strides 4, 8, 16, 32), channels doubling from ``trunk_embed_dim``.
    trunk_embed_dim: int = 32
    trunk_num_heads: int = 1
    trunk_stages: tuple[int, ...] = (1, 1, 2, 1)
    # Windowed attention per stage; at 256 px the stride-16 stage's 16x16 map is one window.
    trunk_window_spec: tuple[int, ...] = (8, 4, 16, 8)
    trunk_global_att_blocks: tuple[int, ...] = ()
    trunk_pos_embed_size: tuple[int, int] = (8, 8)
    # The FPN neck's width: the image embedding's channels and the decoder's width.
    hidden_dim: int = 64
    # A LayerNorm2d after each of the neck's lateral convs, as SAM's neck ends with one.
    # SAM 2's neck reads Hiera's residual stream unnormalised: trained from scratch with the
    # tiny recipe, the image embedding's std grew from 0.66 to 359 in 1200 steps, drowning
    # the positional encodings the decoder finds the click with (held-out 1-click mIoU
    # stuck at 0.18, 3 clicks 0.0).
    neck_norm: bool = True
    memory_dim: int = 32
    memory_attention_layers: int = 1
    memory_feedforward: int = 256
    # The decoder's projections of the high-resolution maps (``conv_s0`` / ``conv_s1``) start
    # at zero, so its upscaling starts as SAM's. From their random init, the maps gave the
    # decoder a click-free route to its loss (a mask of every shape): within 900-1700 steps
    # the click no longer changed any output (held-out 1-click mIoU 0.10-0.18, 3 clicks 0.0).
    high_res_zero_init: bool = True

    @property
    def embedding_size(self) -> int:
        """Side of the square image embedding (the trunk's stride-16 level)."""
        return self.image_size // 16

    def hydra_overrides(self) -> list[str]:
        """Overrides of ``BASE_CONFIG`` that give these dimensions."""
        widths = [self.trunk_embed_dim * 2**i for i in range(len(self.trunk_stages))][::-1]
        side = [self.embedding_size, self.embedding_size]
        trunk = "++model.image_encoder.trunk."
        neck = "++model.image_encoder.neck."
        memory = "++model.memory_attention."
        layer = memory + "layer."
        encoder = "++model.memory_encoder."
        values: dict[str, object] = {
            "++model.image_size": self.image_size,
            trunk + "embed_dim": self.trunk_embed_dim,
            trunk + "num_heads": self.trunk_num_heads,
            trunk + "stages": list(self.trunk_stages),
            trunk + "window_spec": list(self.trunk_window_spec),
            trunk + "global_att_blocks": list(self.trunk_global_att_blocks),
            trunk + "window_pos_embed_bkg_spatial_size": list(self.trunk_pos_embed_size),
            neck + "d_model": self.hidden_dim,
            neck + "backbone_channel_list": widths,
            neck + "position_encoding.num_pos_feats": self.hidden_dim,
            memory + "d_model": self.hidden_dim,
            memory + "num_layers": self.memory_attention_layers,
            layer + "d_model": self.hidden_dim,
            layer + "dim_feedforward": self.memory_feedforward,
            layer + "self_attention.embedding_dim": self.hidden_dim,
            layer + "self_attention.feat_sizes": side,
            layer + "cross_attention.embedding_dim": self.hidden_dim,
            layer + "cross_attention.feat_sizes": side,
            layer + "cross_attention.kv_in_dim": self.memory_dim,
            encoder + "out_dim": self.memory_dim,
            encoder + "in_dim": self.hidden_dim,
            encoder + "position_encoding.num_pos_feats": self.memory_dim,
            encoder + "mask_downsampler.embed_dim": self.hidden_dim,
            encoder + "fuser.layer.dim": self.hidden_dim,
        }
        return [f"{key}={value}".replace(" ", "") for key, value in values.items()]


SAM2_TINY_CONFIG = TinySam2Config()


def _small_decoder(model: SAM2Base, config: TinySam2Config) -> MaskDecoder:
    """The package's ``MaskDecoder`` with ``model``'s SAM 2.1 flags at ``config``'s size."""
    built: MaskDecoder = model.sam_mask_decoder
    return MaskDecoder(
        **tiny_decoder_arguments(config, config.hidden_dim, TwoWayTransformer),
        use_high_res_features=model.use_high_res_features_in_sam,
        iou_prediction_use_sigmoid=model.iou_prediction_use_sigmoid,
        pred_obj_scores=model.pred_obj_scores,
        pred_obj_scores_mlp=model.pred_obj_scores_mlp,
        use_multimask_token_for_obj_ptr=model.use_multimask_token_for_obj_ptr,
        dynamic_multimask_via_stability=built.dynamic_multimask_via_stability,
        dynamic_multimask_stability_delta=built.dynamic_multimask_stability_delta,
        dynamic_multimask_stability_thresh=built.dynamic_multimask_stability_thresh,
    )


def warm_start_from_sam_tiny(model: SAM2Base, checkpoint: Path = SAM_TINY_CHECKPOINT) -> None:
    """Copy the committed ``sam_tiny``'s prompt encoder and mask decoder into ``model``'s (the
    same dimensions and module names, SAM's ``lin1``/``lin2`` MLP layers being SAM 2's
    ``layers.0``/``layers.1``), in place; SAM 2's additions (the object-score token and head,
    ``conv_s0``/``conv_s1``) keep their init.

    The decoder then starts knowing how to find the click: from its own init only, 500 steps
    of the recipe gave held-out 1-click mIoU 0.19 / 3 clicks 0.21, from sam_tiny's 0.41 / 0.49.

    Raises:
      KeyError: a copied tensor has no counterpart of the same shape in ``model``.
    """
    renames = (("prompt_encoder.", "sam_prompt_encoder."), ("mask_decoder.", "sam_mask_decoder."))
    own = model.state_dict()
    copied = {}
    for key, value in torch.load(checkpoint, map_location="cpu", weights_only=True).items():
        for sam_prefix, sam2_prefix in renames:
            if key.startswith(sam_prefix):
                name = sam2_prefix + key[len(sam_prefix) :]
                name = name.replace(".mlp.lin1.", ".mlp.layers.0.").replace(
                    ".mlp.lin2.", ".mlp.layers.1."
                )
                if name not in own or own[name].shape != value.shape:
                    raise KeyError(f"{key} has no counterpart in the SAM 2 model")
                copied[name] = value.to(own[name].dtype)
    model.load_state_dict(copied, strict=False)


def build_sam2_tiny(
    checkpoint: str | Path | None = None, config: TinySam2Config = SAM2_TINY_CONFIG
) -> SAM2Base:
    """Build a tiny SAM 2 in eval mode, randomly initialised or from ``checkpoint``.

    Arguments:
      checkpoint: a state dict (bare, possibly fp16, or the official ``{"model": ...}``
        layout), loaded with ``weights_only=True`` and strict keys as float32. ``None``
        keeps random init.
      config: the dimensions; the default is the committed ``sam2_tiny``.

    Returns:
      ``SAM2Base`` on the CPU with fp32 parameters. Its image encoder takes (B, 3, S, S)
      float32 (S = ``config.image_size``, ImageNet-normalised) and, through
      ``SAM2ImagePredictor``, gives ``image_embed`` (B, hidden_dim, S/16, S/16) and
      ``high_res_feats`` (B, hidden_dim/8, S/4, S/4), (B, hidden_dim/4, S/8, S/8).
    """
    from sam2.build_sam import build_sam2

    model: SAM2Base = build_sam2(
        BASE_CONFIG, device="cpu", mode="eval", hydra_overrides_extra=config.hydra_overrides()
    )
    model.sam_mask_decoder = _small_decoder(model, config)
    if config.high_res_zero_init:
        decoder = model.sam_mask_decoder
        for projection in (decoder.conv_s0, decoder.conv_s1):
            torch.nn.init.zeros_(projection.weight)
            torch.nn.init.zeros_(projection.bias)
    if config.neck_norm:
        for lateral in model.image_encoder.neck.convs:
            lateral.add_module("norm", LayerNorm2d(config.hidden_dim))
    tune_decoder_init(model.sam_prompt_encoder, model.sam_mask_decoder.transformer, config)
    if checkpoint is not None:
        loaded = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        state = sam2_state_dict(loaded)
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()
