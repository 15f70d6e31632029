"""Fast decoder (per-image prepare + per-click graph) against SAM's decoder.

Reference: ``SamOnnxLowRes(return_single_mask=True)`` in torch (SAM's ONNX decoding rule, no
mask input), itself tested against ``SamPredictor`` in test_onnx_export. The rewrites are exact
in real arithmetic, so fp32 logits must agree to float rounding; the browser default (int8
upscaling weights, tanh GELU) must keep thresholded masks at IoU >= 0.98 on average.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from samapp.ml.fast_decoder import (
    CLICK_INPUTS,
    PREPARE_OUTPUTS,
    FastDecoderClick,
    FastDecoderPrepare,
    decode,
    export_fast_decoder,
)
from samapp.ml.onnx_export import SamOnnxLowRes
from samapp.ml.registry import load_model

ATOL = 1e-4


def _model(name: str):
    torch.manual_seed(0)
    return load_model(name, random_init=True)


def _prompts(model, num_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    size = model.image_encoder.img_size
    coords = torch.randint(0, size, (1, num_points, 2), generator=generator).float()
    labels = torch.randint(0, 2, (1, num_points), generator=generator).float()
    if num_points == 4:  # a box (labels 2, 3) and a point, padded as SAM does
        labels = torch.tensor([[1.0, 2.0, 3.0, -1.0]])
    else:
        labels[0, -1] = -1.0
    return coords, labels


def _reference(model, embedding, coords, labels, multimask=False):
    h, w = model.prompt_encoder.image_embedding_size
    with torch.no_grad():
        return SamOnnxLowRes(model, return_single_mask=not multimask)(
            embedding, coords, labels, torch.zeros(1, 1, 4 * h, 4 * w), torch.zeros(1)
        )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.mark.parametrize("name", ["sam_tiny", "sam_vit_b"])
@pytest.mark.parametrize("num_points", [2, 3, 4, 6])
@pytest.mark.parametrize("multimask", [False, True])
def test_torch_parity(name, num_points, multimask):
    model = _model(name)
    c = model.prompt_encoder.embed_dim
    h, w = model.prompt_encoder.image_embedding_size
    embedding = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(num_points))
    coords, labels = _prompts(model, num_points, seed=num_points)
    ref_iou, ref_masks = _reference(model, embedding, coords, labels, multimask)
    iou, masks = decode(model, embedding, coords, labels, multimask)
    count = 4 if multimask else 1
    assert masks.shape == (1, count, 4 * h, 4 * w)
    assert iou.shape == (1, count)
    torch.testing.assert_close(masks, ref_masks, atol=ATOL, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=ATOL, rtol=0)


def test_prepare_shapes():
    model = _model("sam_vit_b")
    src, k0, v0, q0 = FastDecoderPrepare(model)(torch.randn(1, 256, 64, 64))
    assert src.shape == (4096, 256)
    assert k0.shape == (8, 16, 4096)
    assert v0.shape == q0.shape == (8, 4096, 16)
    assert isinstance(FastDecoderClick(model), torch.nn.Module)


@pytest.mark.parametrize("name", ["sam_tiny", "sam_vit_b"])
def test_onnx_parity(name, tmp_path):
    model = _model(name)
    paths = export_fast_decoder(model, tmp_path)
    paths8 = export_fast_decoder(model, tmp_path, int8="upscale", approximate_gelu=True)
    assert [i.name for i in onnx.load(str(paths["click"])).graph.input] == CLICK_INPUTS
    assert [o.name for o in onnx.load(str(paths["prepare"])).graph.output] == PREPARE_OUTPUTS
    c = model.prompt_encoder.embed_dim
    h, w = model.prompt_encoder.image_embedding_size
    prepare = ort.InferenceSession(str(paths["prepare"]))
    click = ort.InferenceSession(str(paths["click"]))
    click8 = ort.InferenceSession(str(paths8["click"]))
    ious = []
    for seed, num_points in enumerate([2, 3, 4, 2, 2, 5]):
        embedding = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(seed))
        coords, labels = _prompts(model, num_points, seed)
        _, ref = _reference(model, embedding, coords, labels)
        prepared = prepare.run(None, {"image_embeddings": embedding.numpy()})
        feeds = dict(zip(PREPARE_OUTPUTS, prepared, strict=True))
        feeds |= {"point_coords": coords.numpy(), "point_labels": labels.numpy()}
        _, masks = click.run(None, feeds)
        np.testing.assert_allclose(masks, ref.numpy(), atol=1e-3, rtol=0)
        _, masks8 = click8.run(None, feeds)
        ious.append(_iou(masks8 > 0, ref.numpy() > 0))
    assert paths8["click"].name == "fast_click_int8up_tanh.onnx"
    ops = {node.op_type for node in onnx.load(str(paths8["click"])).graph.node}
    assert "FastGelu" in ops
    assert "Tanh" not in ops
    assert min(ious) >= 0.95
    assert np.mean(ious) >= 0.98
