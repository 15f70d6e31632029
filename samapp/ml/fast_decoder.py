"""A faster click decoder for the browser: per-image precomputation plus a lean per-click graph.

SAM's ONNX decoder (``SamOnnxModel``) spends ~1.7 GMAC per click on a ViT model (64x64 image
tokens of width 256). Most of it is linear algebra on the image tokens that either does not
depend on the prompt or can be done in the (tiny) token space instead. This module splits the
decoder into two graphs with the same result as ``SamOnnxModel`` (single- or multi-mask) without
mask input (``has_mask_input = 0``, the usual click/box interaction; a mask input changes the
image side that the first graph precomputes):

- ``FastDecoderPrepare`` (once per image, when the embedding arrives): the first two-way block's
  image-side projections, which see only ``image_embeddings + no_mask_embed`` and the positional
  encoding: the token->image keys and values and the image->token queries (~0.4 GMAC).
- ``FastDecoderClick`` (per click) with three rewrites that are exact in real arithmetic:

  1. Attention of T prompt tokens to the N = h*w image tokens, ``softmax(q W_k (x + pe)^T) x W_v``,
     is computed as ``softmax((q W_k) (x + pe)^T) (P x) W_v``: the projections move to the
     token side (T*heads rows instead of N rows); ``q . b_k`` is constant along the softmax axis
     and drops out, and ``b_v`` passes through because softmax rows sum to one.
  2. Attention of the image tokens to the prompt tokens, ``softmax(x W_q k^T) v W_o``, becomes
     ``softmax(x (W_q^T k^T)) (v W_o)``, again two (N, C) x (C, heads*T) products.
  3. The two 2x2/stride-2 transposed convolutions of the output upscaling are plain matmuls in
     channel-last layout (each output pixel depends on one input pixel), followed by one
     65k-element pixel shuffle; only the output masks' hypernetwork vectors are applied.

  Outputs are low-resolution logits (4h, 4w) for the single mask SAM's ONNX rule selects (best of
  the multimask outputs for one click, the single-mask output otherwise), or with ``multimask``
  for all four mask tokens, thresholded and upscaled by the caller. Per click on ViT-B: ~0.8
  GMAC instead of ~1.7, and no full-resolution resize.

Shapes below use C = transformer dim, Ci = C / attention_downsample_rate, H = heads,
d = Ci / H, N = h * w image tokens, T = 1 + num_mask_tokens + num_points prompt tokens.
"""

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
from segment_anything.modeling import Sam
from segment_anything.modeling.transformer import Attention
from segment_anything.utils.onnx import SamOnnxModel
from torch import nn
from torch.nn import functional as F
from torch.onnx import symbolic_helper, symbolic_opset9

from samapp.ml.onnx_common import (
    OPSET,
    POINT_AXES,
    quantize_weights,
    require_cpu_float32,
    trace_to_onnx,
)

PREPARE_INPUTS = ["image_embeddings"]
PREPARE_OUTPUTS = ["src", "k0", "v0", "q0"]
CLICK_INPUTS = ["src", "k0", "v0", "q0", "point_coords", "point_labels"]
CLICK_OUTPUTS = ["iou_predictions", "low_res_masks"]
# Scene stream of the parity probe (``mask_parity``); training and tests use other seeds.
PROBE_SEED = 7919


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(L, H*d) -> (H, L, d)."""
    return x.reshape(x.shape[0], num_heads, -1).transpose(0, 1)


class FastDecoderPrepare(nn.Module):
    """Per-image part: the first two-way block's prompt-independent image projections."""

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.model = model
        layer = model.mask_decoder.transformer.layers[0]
        self.t2i: Attention = layer.cross_attn_token_to_image
        self.i2t: Attention = layer.cross_attn_image_to_token

    @torch.no_grad()
    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(1, C, h, w) float32 ->

        src (N, C): image tokens plus the no-mask dense embedding (the decoder's ``keys``);
        k0 (H, d, N): token->image keys of layer 0, transposed for ``q @ k0``;
        v0 (H, N, d): token->image values of layer 0;
        q0 (H, N, d): image->token queries of layer 0, pre-scaled by 1/sqrt(d).
        """
        prompt_encoder = self.model.prompt_encoder
        src = image_embeddings[0].flatten(1).transpose(0, 1)
        src = src + prompt_encoder.no_mask_embed.weight
        pe = prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1)
        heads = self.t2i.num_heads
        k0 = _heads(self.t2i.k_proj(src + pe), heads).transpose(1, 2)
        v0 = _heads(self.t2i.v_proj(src), heads)
        i2t_heads = self.i2t.num_heads
        d = self.i2t.internal_dim // i2t_heads
        q0 = _heads(self.i2t.q_proj(src + pe), i2t_heads) / math.sqrt(d)
        return src.contiguous(), k0.contiguous(), v0.contiguous(), q0.contiguous()


class FastDecoderClick(SamOnnxModel):
    """Per-click part; see the module docstring. Low-res output: the one mask SAM's ONNX rule
    selects, or with ``multimask`` all of them as ``SamOnnxLowRes(return_single_mask=False)``."""

    def __init__(self, model: Sam, approximate_gelu: bool = False, multimask: bool = False) -> None:
        """``approximate_gelu`` uses the tanh GELU in the output upscaling (SAM: exact erf);
        ``multimask`` returns every mask token's mask and IoU (the upscaling is shared, so
        the extra masks cost one (N*16, C/8) x (C/8, 3) product)."""
        super().__init__(model, return_single_mask=not multimask)
        decoder = model.mask_decoder
        pe = model.prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1)
        # A parameter so that the export stores it once (a buffer becomes one constant per use).
        self.pe = nn.Parameter(pe.detach().clone().contiguous(), requires_grad=False)
        h, w = model.prompt_encoder.image_embedding_size
        self.grid = (h, w)
        up1, norm, _, up2, _ = decoder.output_upscaling
        c, c4 = up1.weight.shape[:2]
        c8 = up2.weight.shape[1]
        # ConvTranspose2d(k=2, s=2) weights (in, out, 2, 2) -> (in, 4 * out), sub-pixel major.
        # Parameters (not buffers) so that the export keeps them as named initializers, which
        # onnxruntime's quantizer can find.
        self.up1_w = nn.Parameter(
            up1.weight.detach().permute(0, 2, 3, 1).reshape(c, 4 * c4).clone(), requires_grad=False
        )
        # Biases repeated per sub-pixel, added to the 2-D matmul outputs: onnxruntime then fuses
        # each matmul with its bias (Gemm, or the quantized matmul's bias input).
        self.register_buffer("up1_b", up1.bias.detach().repeat(4), False)
        self.up2_w = nn.Parameter(
            up2.weight.detach().permute(0, 2, 3, 1).reshape(c4, 4 * c8).clone(), requires_grad=False
        )
        self.register_buffer("up2_b", up2.bias.detach().repeat(4), False)
        self.up_norm = norm
        self.act = nn.GELU(approximate="tanh") if approximate_gelu else decoder.output_upscaling[2]
        self.c4, self.c8 = c4, c8

    # -- attention rewrites ------------------------------------------------------------------

    @staticmethod
    def _tokens_to_image(
        attn: Attention, q: torch.Tensor, xk: torch.Tensor, xv: torch.Tensor
    ) -> torch.Tensor:
        """``attn(q=q, k=xk, v=xv)`` with projections on the token side.

        q (T, C), xk (N, C), xv (N, C) float32 -> (T, C).
        """
        heads = attn.num_heads
        d = attn.internal_dim // heads
        t = q.shape[0]
        qh = _heads(attn.q_proj(q), heads) / math.sqrt(d)  # (H, T, d)
        wk = attn.k_proj.weight.reshape(heads, d, -1)  # (H, d, C)
        mq = torch.matmul(qh, wk).reshape(heads * t, -1)  # (H*T, C)
        probs = torch.softmax(F.linear(mq, xk), dim=-1)  # (H*T, N)
        pooled = torch.matmul(probs, xv).reshape(heads, t, -1)  # (H, T, C)
        wv = attn.v_proj.weight.reshape(heads, d, -1).transpose(1, 2)  # (H, C, d)
        out = torch.matmul(pooled, wv) + attn.v_proj.bias.reshape(heads, 1, d)  # (H, T, d)
        return attn.out_proj(out.transpose(0, 1).reshape(t, heads * d))

    @staticmethod
    def _image_to_tokens(
        attn: Attention,
        k: torch.Tensor,
        v: torch.Tensor,
        xq: torch.Tensor | None = None,
        q_heads: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``attn(q=xq, k=k, v=v)`` for N image queries against T tokens.

        k (T, C), v (T, C); either xq (N, C) or its precomputed scaled projection
        q_heads (H, N, d). Returns (N, C).
        """
        heads = attn.num_heads
        d = attn.internal_dim // heads
        t = k.shape[0]
        kh = _heads(attn.k_proj(k), heads)  # (H, T, d)
        if q_heads is not None:
            n = q_heads.shape[1]
            logits = torch.matmul(q_heads, kh.transpose(1, 2))  # (H, N, T)
            logits = logits.transpose(0, 1)  # (N, H, T)
        else:
            assert xq is not None
            n = xq.shape[0]
            wq = attn.q_proj.weight.reshape(heads, d, -1)  # (H, d, C)
            m = torch.matmul(kh, wq).reshape(heads * t, -1) / math.sqrt(d)  # (H*T, C)
            bias = (kh * attn.q_proj.bias.reshape(heads, 1, d)).sum(-1) / math.sqrt(d)
            logits = (F.linear(xq, m) + bias.reshape(-1)).reshape(n, heads, t)
        probs = torch.softmax(logits, dim=-1).reshape(n, heads * t)
        vh = _heads(attn.v_proj(v), heads)  # (H, T, d)
        wo = attn.out_proj.weight.reshape(-1, heads, d).permute(1, 2, 0)  # (H, d, C)
        u = torch.matmul(vh, wo).reshape(heads * t, -1)  # (H*T, C)
        return torch.matmul(probs, u) + attn.out_proj.bias

    @staticmethod
    def _small_attention(
        attn: Attention, q: torch.Tensor, k_heads: torch.Tensor, v_heads: torch.Tensor
    ) -> torch.Tensor:
        """Token queries (T, C) against precomputed keys (H, d, N) and values (H, N, d)."""
        heads = attn.num_heads
        d = attn.internal_dim // heads
        t = q.shape[0]
        qh = _heads(attn.q_proj(q), heads) / math.sqrt(d)
        probs = torch.softmax(torch.matmul(qh, k_heads), dim=-1)  # (H, T, N)
        out = torch.matmul(probs, v_heads)  # (H, T, d)
        return attn.out_proj(out.transpose(0, 1).reshape(t, heads * d))

    # -- graph ---------------------------------------------------------------------------------

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
        transformer = decoder.transformer
        sparse = self._embed_points(point_coords, point_labels)[0]  # (P, C)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens, sparse], dim=0)  # (T, C)
        pe = self.pe
        queries, keys = tokens, src
        for index, layer in enumerate(transformer.layers):
            if index == 0 and layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries[None], k=queries[None], v=queries[None])[0]
            else:
                q = (queries + tokens)[None]
                queries = queries + layer.self_attn(q=q, k=q, v=queries[None])[0]
            queries = layer.norm1(queries)
            keys_pe = keys + pe  # shared by both cross attentions (keys change after them)
            if index == 0:
                attn_out = self._small_attention(
                    layer.cross_attn_token_to_image, queries + tokens, k0, v0
                )
            else:
                attn_out = self._tokens_to_image(
                    layer.cross_attn_token_to_image, queries + tokens, keys_pe, keys
                )
            queries = layer.norm2(queries + attn_out)
            queries = layer.norm3(queries + layer.mlp(queries))
            if index == 0:
                attn_out = self._image_to_tokens(
                    layer.cross_attn_image_to_token, queries + tokens, queries, q_heads=q0
                )
            else:
                attn_out = self._image_to_tokens(
                    layer.cross_attn_image_to_token, queries + tokens, queries, xq=keys_pe
                )
            keys = layer.norm4(keys + attn_out)
        # Only the IoU and mask tokens are read after the final attention (rows are independent).
        outputs = 1 + decoder.num_mask_tokens
        queries, tokens = queries[:outputs], tokens[:outputs]
        attn_out = self._tokens_to_image(
            transformer.final_attn_token_to_image, queries + tokens, keys + pe, keys
        )
        queries = transformer.norm_final_attn(queries + attn_out)

        # Heads: predicted IoU for every mask token; with one mask, SAM's ONNX selection rule.
        num_masks = decoder.num_mask_tokens
        iou = decoder.iou_prediction_head(queries[0:1])  # (1, K)
        chosen = torch.stack(
            [mlp(queries[1 + i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)]
        )  # (K, C/8)
        if self.return_single_mask:
            reweight = torch.tensor([1000.0] + [0.0] * (num_masks - 1))
            score = iou + (point_coords.shape[1] - 2.5) * reweight
            best = torch.argmax(score, dim=1)  # (1,)
            chosen = torch.index_select(chosen, 0, best)  # (1, C/8)
            iou = torch.index_select(iou, 1, best)  # (1, 1)
        masks = chosen.shape[0]

        # Output upscaling as channel-last matmuls: (N, C) -> (N, 4, C/4) -> (N, 4, 4, C/8).
        n = keys.shape[0]
        y = (torch.matmul(keys, self.up1_w) + self.up1_b).reshape(n, 4, self.c4)
        y = F.layer_norm(y, (self.c4,), self.up_norm.weight, self.up_norm.bias, self.up_norm.eps)
        y = self.act(y)
        y = torch.matmul(y.reshape(4 * n, self.c4), self.up2_w) + self.up2_b
        y = self.act(y.reshape(n, 16, self.c8))
        logits = torch.matmul(y, chosen.transpose(0, 1))  # (N, 16, M)
        h, w = self.grid
        # (i, j, a, b, c, d, m) -> mask m, row 4i + 2a + c, column 4j + 2b + d.
        logits = logits.reshape(h, w, 2, 2, 2, 2, masks).permute(6, 0, 2, 4, 1, 3, 5)
        return iou, logits.reshape(1, masks, 4 * h, 4 * w)


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
    targets = [click.up1_w.detach().numpy(), click.up2_w.detach().numpy()]

    def is_target(name: str) -> bool:
        value = weights.get(name)
        return value is not None and any(
            value.shape == t.shape and bool((value == t).all()) for t in targets
        )

    names = [n.name for n in graph.node if n.op_type == "MatMul" and is_target(n.input[1])]
    if len(names) != 2:
        raise RuntimeError(f"Expected the 2 upscaling MatMuls, found {names}")
    return names
