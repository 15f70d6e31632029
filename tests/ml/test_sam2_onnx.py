"""SAM 2.1's browser decoder graph against the package's own ``SAM2ImagePredictor`` on random-init
Hiera-T: points, box, previous-mask input, single and multi mask; the int8 variant's probe."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from samapp.ml.registry import load_model
from samapp.ml.sam2_embedding import (
    Sam2ImageFeatures,
    sam2_predictor,
    set_sam2_predictor_features,
)
from samapp.ml.sam2_onnx import INPUTS, export_sam2_decoder, export_sam2_decoders, run_onnx
from tests.ml.sam2_parity import assert_matches_predictor

H, W = 300, 400  # original image size (non-square: SAM 2 resizes each axis to 1024)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(1)
    model = load_model("sam2.1_hiera_tiny", random_init=True)
    path = export_sam2_decoder(model, tmp_path_factory.mktemp("sam2") / "decoder.onnx")
    session = ort.InferenceSession(str(path))
    generator = torch.Generator().manual_seed(2)
    features = Sam2ImageFeatures(
        image_embed=torch.randn(256, 64, 64, generator=generator),
        high_res_feats=(
            torch.randn(32, 256, 256, generator=generator),
            torch.randn(64, 128, 128, generator=generator),
        ),
        input_size=(1024, 1024),
        original_size=(H, W),
    )
    predictor = sam2_predictor(model)
    set_sam2_predictor_features(predictor, features)
    return model, session, features, predictor


def graph_inputs(features, points, labels, box=None, mask=None) -> dict[str, torch.Tensor]:
    """What the browser sends: coordinates scaled per axis into the 1024 frame, box corners
    first, no padding point."""
    scale = np.array([1024 / W, 1024 / H], dtype=np.float32)
    coords = [np.asarray(points, np.float32) * scale]
    tags = [np.asarray(labels, np.float32)]
    if box is not None:
        coords.insert(0, np.asarray(box, np.float32).reshape(2, 2) * scale)
        tags.insert(0, np.array([2, 3], np.float32))
    return {
        "image_embeddings": features.image_embed[None],
        "high_res_feats_0": features.high_res_feats[0][None],
        "high_res_feats_1": features.high_res_feats[1][None],
        "point_coords": torch.from_numpy(np.concatenate(coords))[None],
        "point_labels": torch.from_numpy(np.concatenate(tags))[None],
        "mask_input": torch.zeros(1, 1, 256, 256) if mask is None else torch.as_tensor(mask)[None],
        "has_mask_input": torch.tensor([0.0 if mask is None else 1.0]),
    }


@pytest.mark.parametrize(
    ("points", "labels", "box"),
    [
        ([[120, 80]], [1], None),
        ([[120, 80], [300, 200]], [1, 0], None),
        ([[200, 150]], [1], [50, 40, 350, 260]),
        (np.zeros((0, 2)), [], [10, 20, 390, 280]),
    ],
)
def test_graph_equals_the_predictor_single_and_multi(setup, points, labels, box):
    _, session, features, predictor = setup
    got_iou, got_low = run_onnx(session, graph_inputs(features, points, labels, box))
    assert got_iou.shape == (1, 4)
    assert got_low.shape == (1, 4, 256, 256)
    kwargs = {
        "point_coords": np.asarray(points, np.float32) if len(labels) else None,
        "point_labels": np.asarray(labels) if len(labels) else None,
        "box": None if box is None else np.asarray(box, np.float32),
        "return_logits": True,
    }
    assert_matches_predictor(
        predictor.predict(multimask_output=True, **kwargs), got_iou, got_low, [1, 2, 3]
    )
    assert_matches_predictor(
        predictor.predict(multimask_output=False, **kwargs), got_iou, got_low, [0]
    )


def test_graph_refines_a_previous_mask_as_the_predictor(setup):
    _, session, features, predictor = setup
    _, scores, low_res = predictor.predict(np.array([[120.0, 80.0]]), np.array([1]))
    previous = low_res[int(np.argmax(scores))][None]
    points, labels = [[120, 80], [250, 120]], [1, 1]
    expected = predictor.predict(
        np.asarray(points, np.float32),
        np.asarray(labels),
        mask_input=previous,
        multimask_output=False,
        return_logits=True,
    )
    got_iou, got_low = run_onnx(
        session, graph_inputs(features, points, labels, mask=torch.from_numpy(previous))
    )
    assert_matches_predictor(expected, got_iou, got_low, [0])


def test_export_writes_a_manifest_with_the_extra_inputs(setup, tmp_path):
    model = setup[0]
    manifest = export_sam2_decoders(model, "sam2.1_hiera_tiny", tmp_path)
    assert manifest["family"] == "sam2"
    assert manifest["embedding_shape"] == [256, 64, 64]
    assert manifest["extra_inputs"] == {
        "high_res_feats_0": [32, 256, 256],
        "high_res_feats_1": [64, 128, 128],
    }
    fp32 = manifest["variants"]["lowres_multi"]
    assert [spec["name"] for spec in fp32["inputs"]] == INPUTS
    assert (tmp_path / fp32["filename"]).is_file()
    # The int8 graph is stored only when its probe passes; either way the figure is reported.
    int8 = (
        manifest["variants"].get("lowres_multi_int8") or manifest["rejected"]["lowres_multi_int8"]
    )
    assert 0.0 <= int8["parity"]["min_iou"] <= int8["parity"]["mean_iou"] <= 1.0
