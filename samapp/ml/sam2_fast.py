"""SAM 2.1's fast browser decoder: a per-image prepare graph and a lean per-click graph, with the
rewrites of SAM's fast decoder (``samapp.ml.two_way``) and the outputs of ``sam2_onnx``'s single
graph for prompts without mask input (clicks that refine a mask use that graph).

- prepare (once per image): inputs ``image_embeddings`` (1, C, s, s), ``high_res_feats_0``
  (1, C/8, 4s, 4s) and ``high_res_feats_1`` (1, C/4, 2s, 2s) (the stored maps); outputs ``src``,
  ``k0``, ``v0``, ``q0`` (``two_way.prepare_image``), ``up1_add`` (s*s, 4 * C/4) and
  ``up2_add`` (4*s*s, 4 * C/8): the two maps in the click's channel-last upscaling layout with
  the transposed convolutions' biases folded in (``two_way.upscaling_skips``).
- click (per prompt): those six, ``point_coords`` (1, N, 2) and ``point_labels`` (1, N) as for
  ``sam2_onnx`` (model input frame, no padding point: the graph appends it); outputs
  ``iou_predictions`` (1, 4) and ``low_res_masks`` (1, 4, 4s, 4s), index 0 the predictor's
  single-mask choice, 1-3 its multimask outputs (``predictor_outputs``). Float32 throughout.

SAM 2's decoder adds an object-score token before the IoU token; the predictor ignores its
score, and so do these graphs (the token still takes part in the attention).
"""

from pathlib import Path
from typing import Any

import onnx
import torch
from sam2.modeling.sam2_base import SAM2Base
from torch import nn

from samapp.ml.onnx_common import POINT_AXES, trace_to_onnx
from samapp.ml.sam2_models import high_res_shapes
from samapp.ml.two_way import TwoWayClick, prepare_image, upscaling_skips

PREPARE_INPUTS = ["image_embeddings", "high_res_feats_0", "high_res_feats_1"]
PREPARE_OUTPUTS = ["src", "k0", "v0", "q0", "up1_add", "up2_add"]
CLICK_INPUTS = [*PREPARE_OUTPUTS, "point_coords", "point_labels"]
OUTPUTS = ["iou_predictions", "low_res_masks"]


def predictor_outputs(
    decoder: Any, masks: torch.Tensor, iou: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every mask token's logits (1, 4, 4s, 4s) and IoU (1, 4) float32 -> the SAM 2 graphs'
    outputs: index 0 replaced by ``SAM2ImagePredictor``'s single-mask choice (with the
    stability fallback where the model has it), logits clamped to [-32, 32]."""
    if decoder.dynamic_multimask_via_stability:
        single, single_iou = decoder._dynamic_multimask_via_stability(masks, iou)
    else:
        single, single_iou = masks[:, :1], iou[:, :1]
    masks = torch.cat([single, masks[:, 1:]], dim=1)
    iou = torch.cat([single_iou, iou[:, 1:]], dim=1)
    return iou, torch.clamp(masks, -32.0, 32.0)


class Sam2DecoderModule(nn.Module):
    """SAM 2's prompt encoder and mask decoder, shared with ``model``: the base of the
    exported graphs' modules."""

    def __init__(self, model: SAM2Base) -> None:
        super().__init__()
        self.prompt_encoder = model.sam_prompt_encoder
        self.mask_decoder = model.sam_mask_decoder


class _FastPart(Sam2DecoderModule):
    def __init__(self, model: SAM2Base) -> None:
        if not model.sam_mask_decoder.use_high_res_features:
            raise ValueError("The fast SAM 2 decoder needs a model with high-resolution features")
        super().__init__(model)


class Sam2FastPrepare(_FastPart):
    """Per-image part (shares ``model``'s weights); see the module docstring."""

    @torch.no_grad()
    def forward(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        decoder = self.mask_decoder
        prepared = prepare_image(
            self.prompt_encoder, decoder.transformer.layers[0], image_embeddings
        )
        skips = upscaling_skips(decoder.output_upscaling, high_res_feats_1, high_res_feats_0)
        return (*prepared, *skips)


class Sam2FastClick(_FastPart):
    """Per-click part (shares ``model``'s weights); see the module docstring."""

    def __init__(self, model: SAM2Base) -> None:
        super().__init__(model)
        decoder = self.mask_decoder
        self.rewrite = TwoWayClick(
            decoder.transformer,
            decoder.output_upscaling,
            self.prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1),
            self.prompt_encoder.image_embedding_size,
        )

    @torch.no_grad()
    def forward(
        self,
        src: torch.Tensor,
        k0: torch.Tensor,
        v0: torch.Tensor,
        q0: torch.Tensor,
        up1_add: torch.Tensor,
        up2_add: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Sam2FastPrepare``'s outputs and the prompt -> iou_predictions (1, 4) and
        low_res_masks (1, 4, 4s, 4s) float32, as ``Sam2OnnxDecoder`` without mask input."""
        decoder = self.mask_decoder
        sparse = self.prompt_encoder._embed_points(point_coords, point_labels, pad=True)[0]
        first = [decoder.obj_score_token.weight] if decoder.pred_obj_scores else []
        output_tokens = [*first, decoder.iou_token.weight, decoder.mask_tokens.weight]
        tokens = torch.cat([*output_tokens, sparse], dim=0)  # (T, C)
        iou_row = len(first)
        count = decoder.num_mask_tokens
        queries, keys = self.rewrite.attend(tokens, (src, k0, v0, q0), iou_row + 1 + count)
        iou = decoder.iou_prediction_head(queries[iou_row : iou_row + 1])  # (1, K)
        vectors = self.rewrite.mask_vectors(
            decoder.output_hypernetworks_mlps, queries[iou_row + 1 :]
        )
        masks = self.rewrite.upscale(keys, vectors, (up1_add, up2_add))
        return predictor_outputs(decoder, masks, iou)


def export_sam2_fast_decoder(model: SAM2Base, out_dir: str | Path) -> dict[str, Path]:
    """Export ``fast_prepare.onnx`` and ``fast_click.onnx`` into ``out_dir`` (opset 17, checked
    by onnx.checker); ``model`` must be on the CPU in float32. Returns {"prepare", "click"}."""
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("Export needs the model on the CPU in float32")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    side = model.image_size // model.backbone_stride
    (c0, h0, w0), (c1, h1, w1) = high_res_shapes(model)
    features = (
        torch.randn(1, model.sam_prompt_encoder.embed_dim, side, side),
        torch.randn(1, c0, h0, w0),
        torch.randn(1, c1, h1, w1),
    )
    prepare = Sam2FastPrepare(model).eval()
    paths = {"prepare": out_dir / "fast_prepare.onnx", "click": out_dir / "fast_click.onnx"}
    trace_to_onnx(prepare, features, (PREPARE_INPUTS, PREPARE_OUTPUTS), paths["prepare"], {})
    prompt = (torch.rand(1, 3, 2) * model.image_size, torch.tensor([[1.0, 0.0, 1.0]]))
    trace_to_onnx(
        Sam2FastClick(model).eval(),
        (*prepare(*features), *prompt),
        (CLICK_INPUTS, OUTPUTS),
        paths["click"],
        POINT_AXES,
    )
    for path in paths.values():
        onnx.checker.check_model(str(path))
    return paths
