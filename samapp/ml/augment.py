"""Image augmentation for fine-tuning with a trained image encoder: the project's few images
in new poses (flips, transpose) and in new scenes (objects of one image pasted into another,
the "simple copy-paste" of Ghiasi et al., 2021).

Every tensor is in the encoder's input frame: (3, S, S) float32 normalised ``pixels`` and
(N, S, S) bool ``masks``, the image in the top-left ``input_size`` (h, w) region and padding
below and to the right of it. Functions return new tensors and leave their inputs alone.
"""

import torch
from torch import Tensor

from samapp.ml.click_simulation import mask_boxes

FLIP_PROBABILITY = 0.5  # of each flip (and the transpose)


def flip_sample(
    pixels: Tensor, masks: Tensor, input_size: tuple[int, int], generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """A random flip (horizontal, vertical) and, for a square image, transpose of the image
    region of ``pixels`` and ``masks``; the padding stays at the bottom and right."""
    h, w = input_size
    draws = torch.rand(3, generator=generator, device=generator.device) < FLIP_PROBABILITY
    image, objects = pixels[:, :h, :w], masks[:, :h, :w]
    for dim, flip in ((-1, draws[0]), (-2, draws[1])):
        if flip:
            image, objects = image.flip(dim), objects.flip(dim)
    if h == w and draws[2]:
        image, objects = image.transpose(-1, -2), objects.transpose(-1, -2)
    out_pixels, out_masks = pixels.clone(), masks.clone()
    out_pixels[:, :h, :w], out_masks[:, :h, :w] = image, objects
    return out_pixels, out_masks


def paste_objects(
    target: tuple[Tensor, Tensor, tuple[int, int]],
    source: tuple[Tensor, Tensor],
    count: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Paste ``count`` objects of ``source`` (its pixels and masks, drawn at random) at
    random places inside the image region of ``target`` (pixels, masks, input size).

    A pasted object's pixels under its mask replace the target's, the target's masks lose
    the pixels it covers (a mask covered entirely is dropped), and its mask is appended. An
    object whose bounding box does not fit in the target's region is not pasted.

    Returns:
      The target's new (3, S, S) pixels and (M, S, S) masks.
    """
    pixels, masks, (h, w) = target
    source_pixels, source_masks = source
    out_pixels, objects = pixels.clone(), masks.clone()
    device = generator.device
    picked = torch.randperm(source_masks.shape[0], generator=generator, device=device)[:count]
    boxes = mask_boxes(source_masks[picked]).tolist()
    for index, (x0, y0, x1, y1) in zip(picked.tolist(), boxes, strict=True):
        bh, bw = y1 - y0, x1 - x0
        if bh <= 0 or bh > h or bw > w:  # empty, or does not fit
            continue
        oy = int(torch.randint(h - bh + 1, (), generator=generator, device=device))
        ox = int(torch.randint(w - bw + 1, (), generator=generator, device=device))
        shape = source_masks[index, y0:y1, x0:x1]
        region = out_pixels[:, oy : oy + bh, ox : ox + bw]
        region.copy_(torch.where(shape, source_pixels[:, y0:y1, x0:x1], region))
        placed = torch.zeros_like(source_masks[index])
        placed[oy : oy + bh, ox : ox + bw] = shape
        # Every object so far, the target's and those pasted before, loses what this covers.
        objects = torch.cat([objects & ~placed, placed[None]])
    return out_pixels, objects[objects.flatten(1).any(1)]
