"""Encoder speed-ups that keep SAM's image encoder numerically equivalent (float rounding).

``use_sdpa_attention(model)`` replaces the forward of every ``image_encoder`` attention block
with one that calls ``torch.nn.functional.scaled_dot_product_attention`` (fused softmax and
matmuls, the flash/efficient kernels where the backend has them) instead of SAM's explicit
``q @ k^T``, softmax, ``@ v``. The decomposed relative-position term is passed as the additive
attention mask, exactly the bias SAM adds before its softmax. Patching is done at load time on
the instance; weights and state dict are untouched.
"""

import types

import torch
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch.nn import functional as F


def _sdpa_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) float -> (B, H, W, C); same result as ``Attention.forward``."""
    b, h, w, _ = x.shape
    heads = self.num_heads
    qkv = self.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, HW, d) each
    bias = None
    if self.use_rel_pos:
        d = q.shape[-1]
        rel_pos_h = get_rel_pos(h, h, self.rel_pos_h)  # (h, h, d)
        rel_pos_w = get_rel_pos(w, w, self.rel_pos_w)  # (w, w, d)
        r_q = q.reshape(b, heads, h, w, d)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rel_pos_h).contiguous()
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rel_pos_w).contiguous()
        # Written into a contiguous buffer: the einsum outputs are permuted views, and the plain
        # broadcast sum inherits their layout, so the reshape to (HW, HW) would copy the whole
        # (heads, HW, HW) bias once more (805 MB per global-attention block of ViT-B).
        if torch.is_grad_enabled() and rel_h.requires_grad:
            # Training adapters: out= does not record the graph; the plain sum does.
            bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, heads, h * w, h * w)
        else:
            bias = torch.empty(b, heads, h, w, h, w, dtype=q.dtype, device=q.device)
            torch.add(rel_h[..., :, None], rel_w[..., None, :], out=bias)
            bias = bias.view(b, heads, h * w, h * w)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def use_sdpa_attention(model: Sam) -> Sam:
    """Patch ``model.image_encoder``'s attention blocks to use SDPA; returns ``model``.

    Works for SAM's ViT encoders (ViT-B/L/H and ``sam_tiny``); other encoders (MobileSAM's
    TinyViT) have no ``segment_anything`` ``Attention`` blocks and are left unchanged.
    """
    for module in model.image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_forward, module)
    return model
