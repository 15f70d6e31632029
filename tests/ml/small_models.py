"""A tiny-SAM configuration small enough for unit tests of training and fine-tuning."""

from samapp.ml.tiny import TinySamConfig

SMALL = TinySamConfig(
    img_size=64,
    patch_size=8,
    encoder_embed_dim=32,
    encoder_depth=2,
    encoder_num_heads=2,
    encoder_window_size=4,
    encoder_global_attn_indexes=(1,),
    prompt_embed_dim=32,
    decoder_mlp_dim=64,
    decoder_num_heads=2,
    iou_head_hidden_dim=32,
)
