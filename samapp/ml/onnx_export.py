"""ONNX export of SAM's prompt encoder + mask decoder for the browser.

Variants (``VARIANTS``), each also available with ``_int8`` (onnxruntime dynamic
quantization, QUInt8 weights):

- ``official_single`` / ``official_multi``: SAM's own ``SamOnnxModel`` (see
  ``SamOnnxOfficial`` for the one fix) with its inputs
  ``image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size``
  and outputs ``masks, iou_predictions, low_res_masks``). Single returns the mask picked by SAM's
  rule (best multimask output for one click, the single-mask output for more prompts);
  multi returns all ``num_mask_tokens`` masks (index 0 is the single-mask output).
- ``lowres_single`` / ``lowres_multi``: no upscaling and no ``orig_im_size`` input; outputs
  ``iou_predictions, low_res_masks`` (logits of side 4 x embedding side: 256 for the ViT
  models, 128 for ``sam_tiny``), thresholded and upscaled in the browser.

Point coordinates are in the model input frame (after ``ResizeLongestSide``), padded as SAM's
prompt encoder does: a ``-1`` point when there is no box, box corners with labels 2 and 3.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnx
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel
from torch import nn
from torch.nn import functional as F

from samapp.ml.fast_decoder import export_fast_decoder, mask_parity
from samapp.ml.onnx_common import (
    OFFLINE_OPTIMIZATION,
    POINT_AXES,
    export_plan,
    quantize_weights,
    require_cpu_float32,
    store_hashed,
    trace_to_onnx,
)


class SamOnnxOfficial(SamOnnxModel):
    """``SamOnnxModel`` whose crop to the pre-padding size stays dynamic in the ONNX graph.

    SAM's ``mask_postprocessing`` slices with ``int(prepadded_size[i])``, which the tracer
    records as a constant: the exported graph then crops every image as if it had the dummy
    input's aspect ratio (measured: logits off by up to 0.16 on a 300x400 image). Slicing
    with the tensors themselves keeps the crop a function of ``orig_im_size``.
    """

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """(1, K, 4h, 4w) logits, (2,) float32 (H, W) -> (1, K, H, W) logits."""
        masks = F.interpolate(
            masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False
        )
        prepadded_size = self.resize_longest_image_size(orig_im_size, self.img_size)
        masks = masks[..., : prepadded_size[0], : prepadded_size[1]]
        h, w = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)


class SamOnnxLowRes(SamOnnxModel):
    """``SamOnnxModel`` without the upscaling: returns low-resolution logits only."""

    @torch.no_grad()
    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: (1, C, h, w), (1, N, 2), (1, N), (1, 1, 4h, 4w), (1,) float32 ->
        iou_predictions (1, K), low_res_masks (1, K, 4h, 4w) with K = 1 or num_mask_tokens."""
        masks, scores = self.model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=self._embed_points(point_coords, point_labels),
            dense_prompt_embeddings=self._embed_masks(mask_input, has_mask_input),
        )
        if self.return_single_mask:
            masks, scores = self.select_masks(masks, scores, point_coords.shape[1])
        return scores, masks


@dataclass(frozen=True)
class Variant:
    """How one decoder file is built."""

    name: str
    low_res: bool
    single_mask: bool
    int8: bool

    @property
    def input_names(self) -> list[str]:
        names = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
        return names if self.low_res else [*names, "orig_im_size"]

    @property
    def output_names(self) -> list[str]:
        return (
            ["iou_predictions", "low_res_masks"]
            if self.low_res
            else ["masks", "iou_predictions", "low_res_masks"]
        )


VARIANTS: dict[str, Variant] = {
    f"{kind}_{masks}{suffix}": Variant(
        f"{kind}_{masks}{suffix}", kind == "lowres", masks == "single", suffix == "_int8"
    )
    for kind in ("official", "lowres")
    for masks in ("single", "multi")
    for suffix in ("", "_int8")
}


def decoder_module(model: Sam, variant: Variant) -> nn.Module:
    """The traceable module for ``variant`` (shares the weights of ``model``)."""
    cls = SamOnnxLowRes if variant.low_res else SamOnnxOfficial
    return cls(model, return_single_mask=variant.single_mask)


def dummy_inputs(model: Sam, variant: Variant, num_points: int = 5) -> dict[str, torch.Tensor]:
    """Random inputs with the shapes and dtypes the exported graph takes (all float32)."""
    embed_dim = model.prompt_encoder.embed_dim
    h, w = model.prompt_encoder.image_embedding_size
    inputs = {
        "image_embeddings": torch.randn(1, embed_dim, h, w),
        "point_coords": torch.randint(0, model.image_encoder.img_size, (1, num_points, 2)).float(),
        "point_labels": torch.randint(0, 4, (1, num_points)).float(),
        "mask_input": torch.randn(1, 1, 4 * h, 4 * w),
        "has_mask_input": torch.tensor([1.0]),
        "orig_im_size": torch.tensor([1500.0, 2250.0]),
    }
    return {name: inputs[name] for name in variant.input_names}


def export_decoder(model: Sam, variant: str | Variant, path: str | Path) -> Path:
    """Export ``variant`` of ``model``'s decoder to ``path`` (opset 17, checked by onnx.checker).

    ``model`` must be on the CPU in float32 (as ``registry.load_model(name)`` returns it).
    ``_int8`` variants are exported in fp32 next to ``path`` then dynamically quantized.
    """
    variant = VARIANTS[variant] if isinstance(variant, str) else variant
    require_cpu_float32(model)
    path = Path(path)
    target = path.with_suffix(".fp32.onnx") if variant.int8 else path
    trace_to_onnx(
        decoder_module(model, variant),
        tuple(dummy_inputs(model, variant).values()),
        (variant.input_names, variant.output_names),
        target,
        POINT_AXES,
    )
    if variant.int8:
        quantize_weights(target, path)
    onnx.checker.check_model(str(path))
    return path


@dataclass(frozen=True)
class FastVariant:
    """A two-graph variant (``samapp.ml.fast_decoder``): a prepare graph run once per image and
    a click graph without mask input, ~2x faster per click on ViT models. Clicks that refine a
    mask (mask input) use ``mask_input_variant``, exported alongside. ``int8`` and
    ``approximate_gelu`` are ``export_fast_decoder``'s options; a variant with either is lossy
    and served only where it passes the parity probe (``PARITY_MIN_MEAN_IOU``)."""

    mask_input_variant: str
    int8: Literal["upscale"] | None = None
    approximate_gelu: bool = False

    @property
    def lossy(self) -> bool:
        return self.int8 is not None or self.approximate_gelu


FAST_VARIANTS = {
    "fast_multi": FastVariant("lowres_multi"),
    "fast_multi_int8up_tanh": FastVariant("lowres_multi", int8="upscale", approximate_gelu=True),
}
DECODER_VARIANTS = [*VARIANTS, *FAST_VARIANTS]
# A lossy variant is served only if its masks keep this mean IoU with the exact decoder's on
# the probe (``fast_decoder.mask_parity``: every candidate mask of ~40 clicks), the browser's
# accuracy bar. Measured: random-init ViT-B 0.99 (int8 upscaling + tanh GELU),
# the 64-wide trained sam_tiny 0.97.
PARITY_MIN_MEAN_IOU = 0.98


def export_decoders(
    model: Sam,
    model_key: str,
    out_dir: str | Path,
    variants: list[str] | None = None,
) -> dict[str, Any]:
    """Export ``variants`` (default all of ``DECODER_VARIANTS``) into ``out_dir`` with
    content-hashed names.

    Files are named ``{model_key}.{variant}.{sha256[:16]}.onnx`` so they can be served with
    immutable caching; ``manifest.json`` (the returned dict) maps each variant to its file::

        {"model_key", "image_size", "embedding_shape": [C, h, w], "mask_input_size": [4h, 4w],
         "offline_optimization": "basic",
         "variants": {variant: {"filename", "sha256", "bytes", "low_res", "single_mask",
                                "int8", "inputs": [...], "outputs": [...]}}}

    Every stored graph is optimised offline (``onnx_common.optimize_offline``); a lossy
    variant's parity probe runs on the graph before that (the rewrites keep its semantics).

    A fast variant's entry describes its click graph and adds ``"prepare"`` (the per-image
    graph's filename, sha256, bytes, inputs, outputs) and ``"mask_input_variant"`` (the
    variant for clicks with a mask input, added to the export when not asked for); a lossy
    one adds ``"parity"`` (``fast_decoder.mask_parity``). A lossy variant below
    ``PARITY_MIN_MEAN_IOU`` is not stored: ``manifest["rejected"][variant]`` says why.
    """
    out_dir, names = export_plan(out_dir, variants, DECODER_VARIANTS)
    mask_input = [FAST_VARIANTS[n].mask_input_variant for n in names if n in FAST_VARIANTS]
    names = list(dict.fromkeys([*names, *mask_input]))
    h, w = model.prompt_encoder.image_embedding_size
    manifest: dict[str, Any] = {
        "model_key": model_key,
        "image_size": model.image_encoder.img_size,
        "embedding_shape": [model.prompt_encoder.embed_dim, h, w],
        "mask_input_size": [4 * h, 4 * w],
        "offline_optimization": OFFLINE_OPTIMIZATION,
        "variants": {},
        "rejected": {},
    }
    for name in names:
        if name in FAST_VARIANTS:
            entry = _export_fast_variant(model, model_key, name, out_dir)
            if "filename" not in entry:  # a lossy variant that failed the parity probe
                manifest["rejected"][name] = entry
                continue
        else:
            variant = VARIANTS[name]
            tmp = export_decoder(model, variant, out_dir / f".{model_key}.{name}.tmp.onnx")
            entry = {
                **store_hashed(tmp, out_dir, f"{model_key}.{name}"),
                "low_res": variant.low_res,
                "single_mask": variant.single_mask,
                "int8": variant.int8,
            }
        manifest["variants"][name] = entry
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _export_fast_variant(model: Sam, model_key: str, name: str, out_dir: Path) -> dict[str, Any]:
    spec = FAST_VARIANTS[name]
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{model_key}.{name}.") as tmp:
        paths = export_fast_decoder(
            model,
            tmp,
            int8=spec.int8 or False,
            approximate_gelu=spec.approximate_gelu,
            multimask=True,
        )
        parity = {"parity": mask_parity(model, paths)} if spec.lossy else {}
        mean = parity["parity"]["mean_iou"] if parity else 1.0
        if mean < PARITY_MIN_MEAN_IOU:
            reason = f"probe mask IoU with the exact decoder {mean:.4f} < {PARITY_MIN_MEAN_IOU}"
            return {"reason": reason, **parity}  # not stored
        click = store_hashed(paths["click"], out_dir, f"{model_key}.{name}")
        prepare = store_hashed(paths["prepare"], out_dir, f"{model_key}.{name}_prepare")
    return {
        **click,
        "low_res": True,
        "single_mask": False,
        "int8": spec.int8 is not None,
        "prepare": prepare,
        "mask_input_variant": spec.mask_input_variant,
        **parity,
    }
