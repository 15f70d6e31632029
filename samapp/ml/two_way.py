"""Per-image / per-click rewrites of SAM's two-way transformer and output upscaling, exact in
real arithmetic, shared by SAM's fast decoder (``fast_decoder``) and SAM 2's (``sam2_fast``):
their prompt encoders, two-way blocks, attention modules and upscaling have the same attributes.

Without mask input the image side of the first two-way block sees only ``image_embeddings +
no_mask_embed`` and the positional encoding, so its projections are computed once per image
(``prepare_image``: the token->image keys and values and the image->token queries). Per click
(``TwoWayClick``):

1. Attention of T prompt tokens to the N = h*w image tokens, ``softmax(q W_k (x + pe)^T) x W_v``,
   is computed as ``softmax((q W_k) (x + pe)^T) (P x) W_v``: the projections move to the
   token side (T*heads rows instead of N rows); ``q . b_k`` is constant along the softmax axis
   and drops out, and ``b_v`` passes through because softmax rows sum to one.
2. Attention of the image tokens to the prompt tokens, ``softmax(x W_q k^T) v W_o``, becomes
   ``softmax(x (W_q^T k^T)) (v W_o)``, again two (N, C) x (C, heads*T) products.
3. The two 2x2/stride-2 transposed convolutions of the output upscaling are plain matmuls in
   channel-last layout (each output pixel depends on one input pixel), followed by one
   65k-element pixel shuffle; only the output masks' hypernetwork vectors are applied. SAM 2's
   high-resolution maps, added after each convolution, are rearranged once per image into that
   layout (``upscaling_skips``) and added in place of the convolutions' biases.

Shapes below use C = transformer dim, Ci = C / attention_downsample_rate, H = heads,
d = Ci / H, N = h * w image tokens, T = output tokens + prompt points.
"""

import math
from typing import Any

import torch
from segment_anything.modeling.transformer import Attention
from torch import nn
from torch.nn import functional as F


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(L, H*d) -> (H, L, d)."""
    return x.reshape(x.shape[0], num_heads, -1).transpose(0, 1)


def prepare_image(
    prompt_encoder: Any, first_layer: Any, image_embeddings: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The per-image tensors of a two-way transformer without mask input: ``prompt_encoder``
    and ``first_layer`` (two-way block 0) are SAM's or SAM 2's. (1, C, h, w) float32 ->

    src (N, C): image tokens plus the no-mask dense embedding (the decoder's ``keys``);
    k0 (H, d, N): token->image keys of layer 0, transposed for ``q @ k0``;
    v0 (H, N, d): token->image values of layer 0;
    q0 (H, N, d): image->token queries of layer 0, pre-scaled by 1/sqrt(d).
    """
    src = image_embeddings[0].flatten(1).transpose(0, 1)
    src = src + prompt_encoder.no_mask_embed.weight
    pe = prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1)
    t2i: Attention = first_layer.cross_attn_token_to_image
    i2t: Attention = first_layer.cross_attn_image_to_token
    k0 = _heads(t2i.k_proj(src + pe), t2i.num_heads).transpose(1, 2)
    v0 = _heads(t2i.v_proj(src), t2i.num_heads)
    d = i2t.internal_dim // i2t.num_heads
    q0 = _heads(i2t.q_proj(src + pe), i2t.num_heads) / math.sqrt(d)
    return src.contiguous(), k0.contiguous(), v0.contiguous(), q0.contiguous()


def upscaling_skips(
    upscaling: Any, feat_s1: torch.Tensor, feat_s0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM 2's high-resolution maps (added after each transposed convolution of the upscaling)
    in ``TwoWayClick.upscale``'s layout, with the convolutions' biases folded in.

    feat_s1 (1, C/4, 2h, 2w), feat_s0 (1, C/8, 4h, 4w) float32 -> (N, 4 * C/4) rows (i, j),
    columns (a, b, channel) for pixel (2i + a, 2j + b); and (4N, 4 * C/8) rows (i, j, a, b),
    columns (c, d, channel) for pixel (4i + 2a + c, 4j + 2b + d).
    """
    up1, up2 = upscaling[0], upscaling[3]
    c4, h2, w2 = feat_s1.shape[1:]
    h, w = h2 // 2, w2 // 2
    add1 = feat_s1[0].reshape(c4, h, 2, w, 2).permute(1, 3, 2, 4, 0).reshape(h * w, 4 * c4)
    c8 = feat_s0.shape[1]
    add2 = feat_s0[0].reshape(c8, h, 2, 2, w, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
    add2 = add2.reshape(4 * h * w, 4 * c8)
    return (add1 + up1.bias.repeat(4)).contiguous(), (add2 + up2.bias.repeat(4)).contiguous()


class TwoWayClick(nn.Module):
    """The per-click rewrites (module docstring) of a two-way transformer and its output
    upscaling, shared by SAM's ``FastDecoderClick`` and SAM 2's ``sam2_fast.Sam2FastClick``
    (their transformers, attention blocks and upscaling have the same attributes)."""

    # The model's modules (from untyped packages) and the folded biases.
    transformer: Any
    up_norm: Any
    act: Any
    up1_b: torch.Tensor
    up2_b: torch.Tensor

    def __init__(
        self,
        transformer: Any,
        upscaling: Any,
        pe: torch.Tensor,
        grid: tuple[int, int],
        approximate_gelu: bool = False,
    ) -> None:
        """``pe`` (N, C): the dense positional encoding of the ``grid`` (h, w) image tokens;
        ``approximate_gelu`` uses the tanh GELU in the upscaling (SAM: exact erf)."""
        super().__init__()
        self.transformer = transformer
        # A parameter so that the export stores it once (a buffer becomes one constant per use).
        self.pe = nn.Parameter(pe.detach().clone().contiguous(), requires_grad=False)
        self.grid = grid
        up1, norm, _, up2, _ = upscaling
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
        self.act = nn.GELU(approximate="tanh") if approximate_gelu else upscaling[2]
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

    def attend(
        self,
        tokens: torch.Tensor,
        prepared: tuple[torch.Tensor, ...],
        outputs: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two-way transformer on prompt tokens (T, C) and ``prepare_image``'s (src, k0, v0,
        q0). Returns the first ``outputs`` token rows after the final attention (outputs, C)
        and the image tokens (N, C)."""
        src, k0, v0, q0 = prepared
        transformer = self.transformer
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
        # Only the output tokens are read after the final attention (rows are independent).
        queries, tokens = queries[:outputs], tokens[:outputs]
        attn_out = self._tokens_to_image(
            transformer.final_attn_token_to_image, queries + tokens, keys + pe, keys
        )
        return transformer.norm_final_attn(queries + attn_out), keys

    @staticmethod
    def mask_vectors(mlps: Any, mask_tokens: torch.Tensor) -> torch.Tensor:
        """The hypernetwork vector of each mask token: (K, C) -> (K, C/8)."""
        return torch.stack([mlp(mask_tokens[i]) for i, mlp in enumerate(mlps)])

    def upscale(
        self,
        keys: torch.Tensor,
        vectors: torch.Tensor,
        skips: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Low-resolution logits of M masks: image tokens (N, C), hypernetwork vectors
        (M, C/8) -> (1, M, 4h, 4w). ``skips``: SAM 2's high-resolution maps
        (``upscaling_skips``), added in place of the convolutions' biases."""
        add1, add2 = skips if skips is not None else (self.up1_b, self.up2_b)
        masks = vectors.shape[0]
        # Output upscaling as channel-last matmuls: (N, C) -> (N, 4, C/4) -> (N, 4, 4, C/8).
        n = keys.shape[0]
        y = (torch.matmul(keys, self.up1_w) + add1).reshape(n, 4, self.c4)
        y = F.layer_norm(y, (self.c4,), self.up_norm.weight, self.up_norm.bias, self.up_norm.eps)
        y = self.act(y)
        y = torch.matmul(y.reshape(4 * n, self.c4), self.up2_w) + add2
        y = self.act(y.reshape(n, 16, self.c8))
        logits = torch.matmul(y, vectors.transpose(0, 1))  # (N, 16, M)
        h, w = self.grid
        # (i, j, a, b, c, d, m) -> mask m, row 4i + 2a + c, column 4j + 2b + d.
        logits = logits.reshape(h, w, 2, 2, 2, 2, masks).permute(6, 0, 2, 4, 1, 3, 5)
        return logits.reshape(1, masks, 4 * h, 4 * w)
