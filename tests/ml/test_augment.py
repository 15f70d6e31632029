"""Fine-tuning augmentation in the encoder's input frame: flips keep the padding in place;
copy-paste moves an object's pixels and mask together and cuts what it covers."""

import pytest
import torch

from samapp.ml.augment import flip_sample, paste_objects

S = 16


def box_mask(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    mask = torch.zeros(S, S, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_a_flip_moves_pixels_and_masks_together_and_keeps_the_padding() -> None:
    pixels = torch.full((3, S, S), -1.0)
    pixels[:, :10, :12] = torch.arange(120, dtype=torch.float32).reshape(10, 12)
    masks = box_mask(0, 3, 0, 4)[None]
    seen = set()
    for seed in range(16):
        generator = torch.Generator().manual_seed(seed)
        out_pixels, out_masks = flip_sample(pixels, masks, (10, 12), generator)
        assert (out_pixels[:, 10:] == -1).all()
        assert (out_pixels[:, :, 12:] == -1).all()
        assert not out_masks[:, 10:].any()
        assert not out_masks[:, :, 12:].any()
        # The mask still covers the pixel values it covered.
        assert set(out_pixels[0][out_masks[0]].tolist()) == set(pixels[0][masks[0]].tolist())
        seen.add(tuple(out_masks[0].nonzero()[0].tolist()))
    assert len(seen) == 4  # all four corners: both flips, each way
    assert (pixels[:, :10, :12] >= 0).all()  # the input is left alone


def test_pasted_objects_carry_their_pixels_and_cut_what_they_cover() -> None:
    target_pixels = torch.zeros(3, S, S)
    covered = box_mask(0, 12, 0, 12)  # most of the target's region: any paste overlaps it
    source_pixels = torch.full((3, S, S), 5.0)
    star = box_mask(2, 6, 3, 8)
    star[2, 3] = False  # not a full box: only the pixels under the mask move
    generator = torch.Generator().manual_seed(0)
    pixels, masks = paste_objects(
        (target_pixels, covered[None], (12, 12)), (source_pixels, star[None]), 1, generator
    )
    assert masks.shape == (2, S, S)
    pasted = masks[1]
    assert pasted.sum() == star.sum()
    assert not pasted[12:].any()
    assert not pasted[:, 12:].any()
    assert (pixels[:, pasted] == 5).all()
    assert (pixels[:, ~pasted] == 0).all()
    assert not (masks[0] & pasted).any()
    assert (masks[0] | pasted).sum() == covered.sum()


def test_a_covered_mask_is_dropped_and_too_large_objects_are_not_pasted() -> None:
    tiny = box_mask(5, 6, 5, 6)
    whole = box_mask(0, 8, 0, 8)
    generator = torch.Generator().manual_seed(1)
    pixels, masks = paste_objects(
        (torch.zeros(3, S, S), tiny[None], (8, 8)), (torch.ones(3, S, S), whole[None]), 1, generator
    )
    assert masks.shape == (1, S, S)
    assert torch.equal(masks[0], whole)
    too_large = box_mask(0, 10, 0, 10)
    pixels, masks = paste_objects(
        (torch.zeros(3, S, S), tiny[None], (8, 8)),
        (torch.ones(3, S, S), too_large[None]),
        1,
        generator,
    )
    assert torch.equal(masks, tiny[None])
    assert not pixels.any()


@pytest.mark.parametrize("count", [1, 3])
def test_paste_takes_count_distinct_objects(count: int) -> None:
    """Four one-pixel objects whose pixels carry their index: each pasted one shows its own."""
    source = torch.stack([box_mask(i, i + 1, 0, 1) for i in range(4)])
    source_pixels = torch.zeros(3, S, S)
    source_pixels[:, :4, 0] = torch.arange(1.0, 5.0)
    generator = torch.Generator().manual_seed(2)
    pixels, masks = paste_objects(
        (torch.zeros(3, S, S), torch.zeros(0, S, S, dtype=torch.bool), (S, S)),
        (source_pixels, source),
        count,
        generator,
    )
    assert masks.shape[0] == count  # none covered another at this seed
    shown = {float(pixels[0][mask].item()) for mask in masks}
    assert len(shown) == count
    assert shown <= {1.0, 2.0, 3.0, 4.0}
