"""A faster click decoder for the browser: per-image precomputation plus a lean per-click graph.

SAM's ONNX decoder (``SamOnnxModel``) spends ~1.7 GMAC per click on a ViT model (64x64 image
tokens of width 256). Most of it is linear algebra on the image tokens that either does not
depend on the prompt or can be done in the (tiny) token space instead. This module splits the
decoder into two graphs with the same result as ``SamOnnxModel`` (single- or multi-mask) without
mask input (``has_mask_input = 0``, the usual click/box interaction; a mask input changes the
image side that the first graph precomputes), with the rewrites of ``samapp.ml.two_way``:

- ``FastDecoderPrepare`` (once per image, when the embedding arrives): the first two-way block's
  image-side projections (~0.4 GMAC).
- ``FastDecoderClick`` (per click): the prompt tokens, the rewritten transformer and upscaling,
  and SAM's heads. Outputs are low-resolution logits (4h, 4w) for the single mask SAM's ONNX
  rule selects (best of the multimask outputs for one click, the single-mask output otherwise),
  or with ``multimask`` for all four mask tokens, thresholded and upscaled by the caller. Per
  click on ViT-B: ~0.8 GMAC instead of ~1.7, and no full-resolution resize.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel
from torch import nn
from torch.onnx import symbolic_helper, symbolic_opset9

from samapp.ml.onnx_common import (
    OPSET,
    POINT_AXES,
    quantize_weights,
    require_cpu_float32,
    trace_to_onnx,
)
from samapp.ml.two_way import TwoWayClick, prepare_image

PREPARE_INPUTS = ["image_embeddings"]
PREPARE_OUTPUTS = ["src", "k0", "v0", "q0"]
CLICK_INPUTS = ["src", "k0", "v0", "q0", "point_coords", "point_labels"]
CLICK_OUTPUTS = ["iou_predictions", "low_res_masks"]
# Scene stream of the parity probe (``mask_parity``); training and tests use other seeds.
PROBE_SEED = 7919


class FastDecoderPrepare(nn.Module):
    """Per-image part: the first two-way block's prompt-independent image projections."""

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(1, C, h, w) float32 -> src, k0, v0, q0 (see ``prepare_image``)."""
        layer = self.model.mask_decoder.transformer.layers[0]
        return prepare_image(self.model.prompt_encoder, layer, image_embeddings)


class FastDecoderClick(SamOnnxModel):
    """Per-click part; see the module docstring. Low-res output: the one mask SAM's ONNX rule
    selects, or with ``multimask`` all of them as ``SamOnnxLowRes(return_single_mask=False)``."""

    def __init__(self, model: Sam, approximate_gelu: bool = False, multimask: bool = False) -> None:
        """``approximate_gelu`` uses the tanh GELU in the output upscaling (SAM: exact erf);
        ``multimask`` returns every mask token's mask and IoU (the upscaling is shared, so
        the extra masks cost one (N*16, C/8) x (C/8, 3) product)."""
        super().__init__(model, return_single_mask=not multimask)
        decoder = model.mask_decoder
        self.rewrite = TwoWayClick(
            decoder.transformer,
            decoder.output_upscaling,
            model.prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1),
            model.prompt_encoder.image_embedding_size,
            approximate_gelu,
        )

    @torch.no_grad()
    def forward(
        self,
        src: torch.Tensor,
        k0: torch.Tensor,
        v0: torch.Tensor,
        q0: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image tensors from ``FastDecoderPrepare``; point_coords (1, P, 2) and
        point_labels (1, P) float32 as for ``SamOnnxModel`` (model input frame, padded).

        Returns iou_predictions (1, M) and low_res_masks (1, M, 4h, 4w) float32 logits, M = 1,
        or the number of mask tokens (4) with ``multimask``.
        """
        decoder = self.model.mask_decoder
        sparse = self._embed_points(point_coords, point_labels)[0]  # (P, C)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens, sparse], dim=0)  # (T, C)
        num_masks = decoder.num_mask_tokens
        queries, keys = self.rewrite.attend(tokens, (src, k0, v0, q0), 1 + num_masks)

        # Heads: predicted IoU for every mask token; with one mask, SAM's ONNX selection rule.
        iou = decoder.iou_prediction_head(queries[0:1])  # (1, K)
        chosen = self.rewrite.mask_vectors(decoder.output_hypernetworks_mlps, queries[1:])
        if self.return_single_mask:
            reweight = torch.tensor([1000.0] + [0.0] * (num_masks - 1))
            score = iou + (point_coords.shape[1] - 2.5) * reweight
            best = torch.argmax(score, dim=1)  # (1,)
            chosen = torch.index_select(chosen, 0, best)  # (1, C/8)
            iou = torch.index_select(iou, 1, best)  # (1, 1)
        return iou, self.rewrite.upscale(keys, chosen)


def decode(
    model: Sam,
    image_embeddings: torch.Tensor,
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    multimask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run prepare + click in torch: (1, C, h, w), (1, P, 2), (1, P) -> (1, M), (1, M, 4h, 4w)."""
    prepared = FastDecoderPrepare(model)(image_embeddings)
    return FastDecoderClick(model, multimask=multimask)(*prepared, point_coords, point_labels)


def mask_parity(
    model: Sam, paths: dict[str, Path], scenes: int = 1, grid_side: int = 6
) -> dict[str, float]:
    """How closely an exported prepare + click pair (multimask) follows the exact torch decoder.

    Probe: ``scenes`` generated scenes (a seed no training or test set uses), encoded by
    ``model`` itself so that the embeddings are what the model produces; one click at the
    interior point of each object and one at each point of a ``grid_side`` square grid (plus
    SAM's padding point). Every mask of every click is thresholded at 0 in both and compared.
    Returns {"mean_iou", "min_iou", "masks"}.
    """
    # Imported here: the evaluation and embedding helpers are not needed for export itself.
    from samapp.ml.embedding import compute_embeddings
    from samapp.ml.evaluation import first_click
    from samapp.ml.synthetic import generate_scene

    prepare = ort.InferenceSession(str(paths["prepare"]), providers=["CPUExecutionProvider"])
    click = ort.InferenceSession(str(paths["click"]), providers=["CPUExecutionProvider"])
    exact_prepare = FastDecoderPrepare(model)
    exact_click = FastDecoderClick(model, multimask=True)
    ious = []
    for index in range(scenes):
        scene = generate_scene(PROBE_SEED, index)
        embedding = compute_embeddings(model, [scene.image])[0]
        image_embeddings = embedding.embedding[None]
        exact_prepared = exact_prepare(image_embeddings)
        prepared = prepare.run(None, {"image_embeddings": image_embeddings.numpy()})
        feeds = dict(zip(PREPARE_OUTPUTS, prepared, strict=True))
        side = max(scene.image.shape[:2])
        grid = [
            ((i + 0.5) * side / grid_side, (j + 0.5) * side / grid_side)
            for j in range(grid_side)
            for i in range(grid_side)
        ]
        scale = model.image_encoder.img_size / side
        for x, y in [first_click(mask) for mask in scene.masks] + grid:
            coords = torch.tensor([[[x * scale, y * scale], [0.0, 0.0]]])
            labels = torch.tensor([[1.0, -1.0]])
            _, want = exact_click(*exact_prepared, coords, labels)
            feeds |= {"point_coords": coords.numpy(), "point_labels": labels.numpy()}
            _, got = click.run(None, feeds)
            for a, b in zip(got[0] > 0, want[0].numpy() > 0, strict=True):
                union = np.logical_or(a, b).sum()
                ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
    return {"mean_iou": float(np.mean(ious)), "min_iou": float(np.min(ious)), "masks": len(ious)}


@symbolic_helper.parse_args("v", "s")
def _gelu_symbolic(g: Any, x: Any, approximate: str = "none") -> Any:
    """aten::gelu -> onnxruntime's fused ``com.microsoft::FastGelu`` for the tanh form.

    Opset 17 has no Gelu op, so the exporter writes the tanh GELU as nine elementwise nodes,
    which onnxruntime does not fuse back (it does fuse the erf form into BiasGelu): nine
    passes over the 2M-element upscaling tensor instead of one, about a fifth of the click.
    FastGelu computes the same tanh formula in one.
    """
    if approximate != "tanh":
        return symbolic_opset9.gelu(g, x, approximate)
    out = g.op("com.microsoft::FastGelu", x)
    out.setType(x.type())
    return out


@contextlib.contextmanager
def _fused_tanh_gelu() -> Iterator[None]:
    """Export aten::gelu with ``_gelu_symbolic`` inside the block (or decorated function) only:
    the registry is global."""
    torch.onnx.register_custom_op_symbolic("aten::gelu", _gelu_symbolic, OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::gelu", OPSET)


@_fused_tanh_gelu()
def export_fast_decoder(
    model: Sam,
    out_dir: str | Path,
    int8: bool | Literal["all", "upscale"] = False,
    prefix: str = "fast",
    per_channel: bool = False,
    approximate_gelu: bool = False,
    multimask: bool = False,
) -> dict[str, Path]:
    """Export ``{prefix}_prepare.onnx`` and ``{prefix}_click{suffix}.onnx`` into ``out_dir``.

    ``model`` must be on the CPU in float32. ``int8`` dynamically quantizes the click graph's
    constant-weight matmuls (QUInt8 weights, per channel if ``per_channel``): ``True`` or
    ``"all"`` every one (suffix ``_int8``), ``"upscale"`` only the two output-upscaling matmuls
    (~half the click's MACs; suffix ``_int8up``). ``approximate_gelu`` adds ``_tanh``,
    ``multimask`` (every mask token's output) ``_multi``. The prepare graph stays float32 (it
    runs once per image). Returns {"prepare": path, "click": path}.
    """
    require_cpu_float32(model)
    mode = "all" if int8 is True else (int8 or "")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = model.prompt_encoder.embed_dim
    h, w = model.prompt_encoder.image_embedding_size
    embeddings = torch.randn(1, c, h, w)
    prepare = FastDecoderPrepare(model).eval()
    prepare_path = out_dir / f"{prefix}_prepare.onnx"
    trace_to_onnx(prepare, (embeddings,), (PREPARE_INPUTS, PREPARE_OUTPUTS), prepare_path, {})
    click = FastDecoderClick(model, approximate_gelu=approximate_gelu, multimask=multimask).eval()
    prepared = prepare(embeddings)
    coords = torch.randint(0, model.image_encoder.img_size, (1, 2, 2)).float()
    labels = torch.tensor([[1.0, -1.0]])
    suffix = "_multi" if multimask else ""
    suffix += {"": "", "all": "_int8", "upscale": "_int8up"}[mode]
    suffix += "pc" if mode and per_channel else ""
    suffix += "_tanh" if approximate_gelu else ""
    click_path = out_dir / f"{prefix}_click{suffix}.onnx"
    target = click_path.with_suffix(".fp32.onnx") if mode else click_path
    trace_to_onnx(
        click,
        (*prepared, coords, labels),
        (CLICK_INPUTS, CLICK_OUTPUTS),
        target,
        POINT_AXES,
    )
    if mode:
        nodes = _upscale_matmuls(target, click) if mode == "upscale" else None
        quantize_weights(target, click_path, per_channel=per_channel, nodes_to_quantize=nodes)
    for path in (prepare_path, click_path):
        onnx.checker.check_model(str(path))
    return {"prepare": prepare_path, "click": click_path}


def _upscale_matmuls(path: Path, click: FastDecoderClick) -> list[str]:
    """Names of the MatMul nodes whose weight is ``up1_w`` or ``up2_w`` in the exported graph."""
    graph = onnx.load(str(path)).graph
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the tracer may emit buffers as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            weights[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    targets = [click.rewrite.up1_w.detach().numpy(), click.rewrite.up2_w.detach().numpy()]

    def is_target(name: str) -> bool:
        value = weights.get(name)
        return value is not None and any(
            value.shape == t.shape and bool((value == t).all()) for t in targets
        )

    names = [n.name for n in graph.node if n.op_type == "MatMul" and is_target(n.input[1])]
    if len(names) != 2:
        raise RuntimeError(f"Expected the 2 upscaling MatMuls, found {names}")
    return names
