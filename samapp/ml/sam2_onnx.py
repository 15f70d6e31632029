"""ONNX export of SAM 2.1's prompt encoder + mask decoder for the browser.

One graph per variant (``SAM2_VARIANTS``), low-resolution output with every mask token:

- inputs: ``image_embeddings`` (1, C, s, s), ``high_res_feats_0`` (1, C0, 4s, 4s),
  ``high_res_feats_1`` (1, C1, 2s, 2s) (the stored maps, ``sam2_embedding``), ``point_coords``
  (1, N, 2) and ``point_labels`` (1, N) in the model input frame (box corners first with labels
  2 and 3, then clicks labelled 1 / 0, *without* SAM's padding point: the graph appends it, as
  SAM 2's prompt encoder always does), ``mask_input`` (1, 1, 4s, 4s) previous low-res logits and
  ``has_mask_input`` (1,) 0 or 1; all float32.
- outputs: ``iou_predictions`` (1, 4) and ``low_res_masks`` (1, 4, 4s, 4s) logits clamped to
  [-32, 32] as the predictor's. Index 0 is what ``SAM2ImagePredictor.predict(...,
  multimask_output=False)`` returns (the single-mask token, or the best multimask output when
  its stability is below the model's threshold); 1-3 are its ``multimask_output=True`` masks.

``lowres_multi_int8`` is the same graph with dynamically quantized weights, stored only where
its masks keep ``PARITY_MIN_MEAN_IOU`` with the fp32 graph's on the probe (``int8_parity``).
``fast_multi`` is a per-image prepare graph plus a per-click graph with the same outputs for
prompts without mask input (``sam2_fast``); ``lowres_multi`` serves the clicks that refine a mask.
"""

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sam2.modeling.sam2_base import SAM2Base

from samapp.ml.onnx_common import (
    OFFLINE_OPTIMIZATION,
    POINT_AXES,
    export_plan,
    quantize_weights,
    store_hashed,
    trace_to_onnx,
)
from samapp.ml.onnx_export import PARITY_MIN_MEAN_IOU
from samapp.ml.sam2_fast import Sam2DecoderModule, export_sam2_fast_decoder, predictor_outputs
from samapp.ml.sam2_models import high_res_shapes

INPUTS = [
    "image_embeddings",
    "high_res_feats_0",
    "high_res_feats_1",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
]
OUTPUTS = ["iou_predictions", "low_res_masks"]
SAM2_VARIANTS = ["lowres_multi", "lowres_multi_int8", "fast_multi"]
# The two-graph variant and the single graph its clicks with a mask input use.
FAST_VARIANT, MASK_INPUT_VARIANT = "fast_multi", "lowres_multi"
# Scene stream of the int8 parity probe; tests use other seeds.
PROBE_SEED = 104729


class Sam2OnnxDecoder(Sam2DecoderModule):
    """SAM 2's prompt encoder and mask decoder as one traceable module (shares ``model``'s
    weights); see the module docstring for inputs and outputs."""

    @torch.no_grad()
    def forward(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.prompt_encoder
        sparse = encoder._embed_points(point_coords, point_labels, pad=True)
        has = has_mask_input.reshape(1, 1, 1, 1)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has * encoder._embed_masks(mask_input) + (1 - has) * no_mask
        masks, iou, _, _ = self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            repeat_image=False,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        return predictor_outputs(self.mask_decoder, masks, iou)


def dummy_inputs(model: SAM2Base, num_points: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the exported graph's shapes (float32): clicks, no box, no mask."""
    generator = torch.Generator().manual_seed(seed)
    side = model.image_size // model.backbone_stride
    (c0, h0, w0), (c1, h1, w1) = high_res_shapes(model)
    dim = model.sam_prompt_encoder.embed_dim
    coords = torch.rand(1, num_points, 2, generator=generator) * model.image_size
    return {
        "image_embeddings": torch.randn(1, dim, side, side, generator=generator),
        "high_res_feats_0": torch.randn(1, c0, h0, w0, generator=generator),
        "high_res_feats_1": torch.randn(1, c1, h1, w1, generator=generator),
        "point_coords": coords,
        "point_labels": torch.randint(0, 2, (1, num_points), generator=generator).float(),
        "mask_input": torch.randn(1, 1, 4 * side, 4 * side, generator=generator),
        "has_mask_input": torch.tensor([0.0]),
    }


def export_sam2_decoder(model: SAM2Base, path: str | Path, int8: bool = False) -> Path:
    """Export ``model``'s decoder graph to ``path`` (opset 17, checked by onnx.checker); with
    ``int8`` the fp32 export is dynamically quantized (QUInt8 weights). ``model`` must be on the
    CPU in float32."""
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("Export needs the model on the CPU in float32")
    path = Path(path)
    target = path.with_suffix(".fp32.onnx") if int8 else path
    inputs = dummy_inputs(model)
    trace_to_onnx(
        Sam2OnnxDecoder(model).eval(), tuple(inputs.values()), (INPUTS, OUTPUTS), target, POINT_AXES
    )
    if int8:
        quantize_weights(target, path)
    onnx.checker.check_model(str(path))
    return path


def run_onnx(session: ort.InferenceSession, inputs: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """[iou_predictions, low_res_masks] of an exported graph on torch inputs."""
    feeds = {name: inputs[name].numpy() for name in INPUTS}
    outputs: list[np.ndarray] = session.run(OUTPUTS, feeds)
    return outputs


def int8_parity(
    model: SAM2Base, fp32_path: Path, int8_path: Path, clicks: int = 24
) -> dict[str, float]:
    """Mean and min IoU of the int8 graph's thresholded masks (every candidate) with the fp32
    graph's, over ``clicks`` random prompts of 1-3 points on random feature maps."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [ort.InferenceSession(str(p), options) for p in (fp32_path, int8_path)]
    ious: list[float] = []
    for i in range(clicks):
        inputs = dummy_inputs(model, num_points=1 + i % 3, seed=PROBE_SEED + i)
        (_, exact), (_, quantized) = (run_onnx(s, inputs) for s in sessions)
        for a, b in zip(exact[0] > 0, quantized[0] > 0, strict=True):
            union = np.logical_or(a, b).sum()
            ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
    return {"mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious))}


def export_sam2_decoders(
    model: SAM2Base, model_key: str, out_dir: str | Path, variants: list[str] | None = None
) -> dict[str, Any]:
    """Export ``variants`` (default ``SAM2_VARIANTS``) into ``out_dir`` with content-hashed
    names and return the manifest (also written as ``manifest.json``), in the layout of
    ``onnx_export.export_decoders`` plus ``"family": "sam2"`` and ``"extra_inputs"`` (name ->
    (C, h, w) of the high-resolution maps the graphs take beside the image embedding). The
    ``fast_multi`` entry describes its click graph and adds ``"prepare"`` (the per-image graph's
    file) and ``"mask_input_variant"`` (``lowres_multi``, added to the export when not asked
    for)."""
    out_dir, names = export_plan(out_dir, variants, SAM2_VARIANTS)
    if FAST_VARIANT in names and MASK_INPUT_VARIANT not in names:
        names.append(MASK_INPUT_VARIANT)
    side = model.image_size // model.backbone_stride
    shapes = high_res_shapes(model)
    manifest: dict[str, Any] = {
        "model_key": model_key,
        "family": "sam2",
        "image_size": model.image_size,
        "embedding_shape": [model.sam_prompt_encoder.embed_dim, side, side],
        "extra_inputs": {f"high_res_feats_{i}": list(shape) for i, shape in enumerate(shapes)},
        "mask_input_size": [4 * side, 4 * side],
        "offline_optimization": OFFLINE_OPTIMIZATION,
        "variants": {},
        "rejected": {},
    }
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{model_key}.") as tmp:
        fp32 = export_sam2_decoder(model, Path(tmp) / "fp32.onnx")
        for name in names:
            int8 = name.endswith("_int8")
            entry: dict[str, Any] = {"low_res": True, "single_mask": False, "int8": int8}
            if name == FAST_VARIANT:
                paths = export_sam2_fast_decoder(model, Path(tmp) / name)
                path = paths["click"]
                entry["prepare"] = store_hashed(
                    paths["prepare"], out_dir, f"{model_key}.{name}_prepare"
                )
                entry["mask_input_variant"] = MASK_INPUT_VARIANT
            elif int8:
                path = export_sam2_decoder(model, Path(tmp) / "int8.onnx", int8=True)
                entry["parity"] = int8_parity(model, fp32, path)
                if entry["parity"]["mean_iou"] < PARITY_MIN_MEAN_IOU:
                    mean = entry["parity"]["mean_iou"]
                    manifest["rejected"][name] = {
                        "reason": f"probe mask IoU with fp32 {mean:.4f} < {PARITY_MIN_MEAN_IOU}",
                        "parity": entry["parity"],
                    }
                    continue
            else:
                path = Path(tmp) / f"{name}.onnx"
                path.write_bytes(fp32.read_bytes())
            manifest["variants"][name] = {
                **store_hashed(path, out_dir, f"{model_key}.{name}"),
                **entry,
            }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
