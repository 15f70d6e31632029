"""SDPA attention patch: same image embeddings as SAM's explicit attention."""

import torch

from samapp.ml.fast_encoder import use_sdpa_attention
from samapp.ml.registry import load_model


def test_sdpa_encoder_matches_reference():
    torch.manual_seed(0)
    model = load_model("sam_tiny", random_init=True)
    for block in model.image_encoder.blocks:  # non-zero relative positions
        torch.nn.init.normal_(block.attn.rel_pos_h, std=0.5)
        torch.nn.init.normal_(block.attn.rel_pos_w, std=0.5)
    size = model.image_encoder.img_size
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = model.image_encoder(images)
        use_sdpa_attention(model)
        patched = model.image_encoder(images)
    torch.testing.assert_close(patched, reference, atol=1e-4, rtol=1e-4)
