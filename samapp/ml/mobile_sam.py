"""MobileSAM: SAM with the TinyViT-5M image encoder.

The encoder architecture follows TinyViT (Copyright (c) 2022 Microsoft, MIT licence,
https://github.com/microsoft/Cream/tree/main/TinyViT) as adapted for SAM by MobileSAM
(Chaoning Zhang et al., Apache 2.0, https://github.com/ChaoningZhang/MobileSAM,
``mobile_sam/modeling/tiny_vit_sam.py``). This is a trimmed re-implementation for
inference: no stochastic depth, no gradient checkpointing, no layer-wise learning rates.
Module names are kept so that the state-dict keys match the official ``mobile_sam.pt``.
The prompt encoder and mask decoder are SAM's own modules.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.image_encoder import window_partition, window_unpartition
from torch import nn


class Conv2dBN(nn.Sequential):
    """Bias-free convolution followed by batch norm (keys ``c.*`` and ``bn.*``)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> None:
        super().__init__(
            OrderedDict(
                c=nn.Conv2d(
                    in_chans, out_chans, kernel_size, stride, padding, groups=groups, bias=False
                ),
                bn=nn.BatchNorm2d(out_chans),
            )
        )


class PatchEmbed(nn.Module):
    """Two stride-2 convolutions: (B, 3, H, W) -> (B, embed_dim, H/4, W/4)."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2dBN(in_chans, embed_dim // 2, 3, 2, 1),
            nn.GELU(),
            Conv2dBN(embed_dim // 2, embed_dim, 3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block on (B, C, H, W)."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv1(x))
        y = self.act(self.conv2(y))
        return self.act(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Downsampling between stages: (B, C, H, W) or (B, H*W, C) -> (B, H'*W', out_dim)."""

    def __init__(self, resolution: int, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.view(x.shape[0], self.resolution, self.resolution, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.conv3(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a learned bias per relative offset (|dy|, |dx|).

    Operates on windows (B, N, C) with N = window_size**2.
    """

    attention_bias_idxs: torch.Tensor  # (N, N) int64 offset index per query/key pair

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        yy, xx = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        yy, xx = yy.flatten(), xx.flatten()
        # Offsets are numbered as TinyViT does: first seen in row-major order = |dy| * ws + |dx|.
        idxs = (yy[:, None] - yy[None]).abs() * window_size + (xx[:, None] - xx[None]).abs()
        self.register_buffer("attention_bias_idxs", idxs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=3)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn + self.attention_biases[:, self.attention_bias_idxs]
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    """Pre-norm two-layer MLP on (B, N, C)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention, depthwise 3x3 convolution, MLP on tokens (B, H*W, C)."""

    def __init__(
        self, dim: int, resolution: int, num_heads: int, window_size: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hw = (self.resolution, self.resolution)
        windows, pad_hw = window_partition(x.view(b, *hw, c), self.window_size)
        windows = self.attn(windows.flatten(1, 2)).view_as(windows)
        x = x + window_unpartition(windows, self.window_size, pad_hw, hw).reshape(b, n, c)
        x = self.local_conv(x.transpose(1, 2).reshape(b, c, *hw))
        x = x.view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class Stage(nn.Module):
    """A list of ``blocks`` followed by an optional ``downsample``."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """TinyViT image encoder for SAM: (B, 3, img_size, img_size) -> (B, 256, img_size/16, ...).

    Stage 0 is convolutional (MBConv), stages 1.. are attention stages. The last patch merging
    keeps the resolution (stride 1), as in MobileSAM, so the output stride is 16.
    """

    def __init__(
        self,
        img_size: int = 1024,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        out_chans: int = 256,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_embed = PatchEmbed(3, embed_dims[0])
        resolution = img_size // 4
        self.layers = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(embed_dims, depths, strict=True)):
            last = i == len(embed_dims) - 1
            stride = 1 if i == len(embed_dims) - 2 else 2
            downsample = None if last else PatchMerging(resolution, dim, embed_dims[i + 1], stride)
            if i == 0:
                blocks: list[nn.Module] = [MBConv(dim, mbconv_expand_ratio) for _ in range(depth)]
            else:
                blocks = [
                    TinyViTBlock(dim, resolution, num_heads[i], window_sizes[i], mlp_ratio)
                    for _ in range(depth)
                ]
            self.layers.append(Stage(blocks, downsample))
            if not last:
                resolution //= stride
        self.out_resolution = resolution
        # The classification head is unused by SAM but present in the official checkpoint.
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        r = self.out_resolution
        return self.neck(x.view(x.shape[0], r, r, -1).permute(0, 3, 1, 2))


def build_mobile_sam(image_size: int = 1024) -> Sam:
    """MobileSAM (``vit_t``): TinyViT-5M encoder with SAM's prompt encoder and mask decoder."""
    prompt_embed_dim = 256
    embedding_size = image_size // 16
    sam = Sam(
        image_encoder=TinyViT(img_size=image_size, out_chans=prompt_embed_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=prompt_embed_dim, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()
