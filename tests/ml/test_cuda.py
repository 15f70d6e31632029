"""The training, fine-tuning and embedding paths on a CUDA device.

CI has no GPU, so these skip there; they run wherever ``torch.cuda.is_available()``.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from samapp.ml.embedding import compute_embeddings
from samapp.ml.evaluation import evaluate_interactive
from samapp.ml.finetune import FinetuneConfig, finetune, make_sample
from samapp.ml.synthetic import generate_objects
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, build_sam_tiny
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import init_decoder_attention, train

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: the GPU paths need one"
)


def test_training_runs_on_cuda_and_keeps_the_model_there(tmp_path):
    torch.manual_seed(0)
    sam = build_sam_tiny()
    init_decoder_attention(sam, TrainConfig.attention_init_gain)
    sam = sam.cuda()
    config = replace(TrainConfig(), steps=4, images_per_step=2)

    result = train(sam, config, tmp_path / "state.pt", progress=False)

    assert result.finished
    for name, tensor in sam.state_dict().items():
        assert tensor.device.type == "cuda", name
        assert torch.isfinite(tensor).all(), name


def test_finetuning_runs_on_cuda_from_cuda_embeddings():
    sam = build_sam_tiny(SAM_TINY_CHECKPOINT).cuda()
    scenes = generate_objects(7, 12)
    embeddings = compute_embeddings(sam, [scene.image for scene in scenes])
    samples = [
        make_sample(e, s.masks, sam.image_encoder.img_size)
        for e, s in zip(embeddings, scenes, strict=True)
    ]

    result = finetune(sam, samples, FinetuneConfig.from_options({"steps": 5, "images_per_step": 2}))

    assert len(result.loss_curve) == 5
    assert np.isfinite(result.loss_curve).all()
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


def test_fp16_cuda_embeddings_give_the_masks_of_fp32_cpu_ones():
    """The encoder runs under fp16 autocast on CUDA; the 1- and 3-click masks it leads
    to must stay those of the fp32 CPU encoder."""
    scenes = generate_objects(11, 40)
    images = [scene.image for scene in scenes]
    masks = [scene.masks for scene in scenes]
    cpu = build_sam_tiny(SAM_TINY_CHECKPOINT)
    gpu = build_sam_tiny(SAM_TINY_CHECKPOINT).cuda()

    on_cpu = evaluate_interactive(cpu, compute_embeddings(cpu, images), masks, clicks=3)
    on_gpu = evaluate_interactive(gpu, compute_embeddings(gpu, images), masks, clicks=3)

    assert abs(on_cpu.miou(1) - on_gpu.miou(1)) < 0.01
    assert abs(on_cpu.miou(3) - on_gpu.miou(3)) < 0.01
