"""SAM 2.1's fast browser decoder (``sam2_fast``: per-image prepare graph + per-click graph, as
exported in the manifest) against the package's ``SAM2ImagePredictor``: random-init Hiera-T on
random maps, and the committed ``sam2_tiny`` on its own encoder's maps of a generated scene.
Prompts: 1 point, 3 points, a box with a point, a box alone; single and multi mask. The graphs
are exact rewrites, so fp32 logits agree within 1e-3 and thresholded masks at IoU >= 0.99."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from samapp.ml.registry import load_model
from samapp.ml.sam2_embedding import (
    Sam2ImageFeatures,
    compute_sam2_features,
    sam2_predictor,
    set_sam2_predictor_features,
)
from samapp.ml.sam2_fast import CLICK_INPUTS, PREPARE_INPUTS, PREPARE_OUTPUTS
from samapp.ml.sam2_onnx import export_sam2_decoders
from samapp.ml.synthetic import generate_scene
from tests.ml.sam2_parity import assert_matches_predictor

# Prompts in fractions of the image's (width, height): points, labels, box.
PROMPTS = {
    "1 point": ([[0.3, 0.25]], [1], None),
    "3 points": ([[0.3, 0.25], [0.7, 0.6], [0.45, 0.8]], [1, 0, 1], None),
    "box + point": ([[0.5, 0.5]], [1], [0.15, 0.1, 0.85, 0.9]),
    "box": ([], [], [0.05, 0.2, 0.6, 0.95]),
}


def _random_maps(model) -> Sam2ImageFeatures:
    """Random maps of Hiera-T's shapes for a 300x400 image."""
    generator = torch.Generator().manual_seed(2)
    return Sam2ImageFeatures(
        image_embed=torch.randn(256, 64, 64, generator=generator),
        high_res_feats=(
            torch.randn(32, 256, 256, generator=generator),
            torch.randn(64, 128, 128, generator=generator),
        ),
        input_size=(1024, 1024),
        original_size=(300, 400),
    )


def _encoded(model) -> Sam2ImageFeatures:
    """The model's own maps of a non-square crop of a generated scene."""
    image = np.ascontiguousarray(generate_scene(23, 0).image[:180, :240])
    return compute_sam2_features(model, [image])[0]


@pytest.fixture(
    scope="module",
    params=[("sam2.1_hiera_tiny", _random_maps), ("sam2_tiny", _encoded)],
    ids=["hiera_t_random", "sam2_tiny"],
)
def fast(request, tmp_path_factory):
    key, features_of = request.param
    torch.manual_seed(1)
    model = load_model(key, random_init=key != "sam2_tiny")
    features = features_of(model)
    out = tmp_path_factory.mktemp(key)
    manifest = export_sam2_decoders(model, key, out, ["fast_multi"])
    entry = manifest["variants"]["fast_multi"]
    prepare = ort.InferenceSession(str(out / entry["prepare"]["filename"]))
    click = ort.InferenceSession(str(out / entry["filename"]))
    maps = {name: array[None] for name, array in features.arrays().items()}
    assert list(maps) == PREPARE_INPUTS
    prepared = dict(zip(PREPARE_OUTPUTS, prepare.run(None, maps), strict=True))
    predictor = sam2_predictor(model)
    set_sam2_predictor_features(predictor, features)
    return {
        "model": model,
        "manifest": manifest,
        "click": click,
        "prepared": prepared,
        "predictor": predictor,
        "size": features.original_size,
    }


def test_manifest_has_the_prepare_graph_and_the_mask_input_variant(fast):
    manifest = fast["manifest"]
    entry = manifest["variants"]["fast_multi"]
    assert entry["mask_input_variant"] == "lowres_multi"
    assert "lowres_multi" in manifest["variants"]
    assert [spec["name"] for spec in entry["prepare"]["inputs"]] == PREPARE_INPUTS
    assert [spec["name"] for spec in entry["inputs"]] == CLICK_INPUTS
    assert (entry["low_res"], entry["single_mask"], entry["int8"]) == (True, False, False)


@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_click_graph_equals_the_predictor_single_and_multi(fast, prompt):
    fractions, labels, box_fractions = PROMPTS[prompt]
    h, w = fast["size"]
    side = fast["model"].image_size
    points = np.asarray(fractions, np.float32).reshape(-1, 2) * [w, h]
    box = None if box_fractions is None else np.asarray(box_fractions, np.float32) * [w, h, w, h]
    # What the browser sends: per-axis scaling into the model frame, box corners first.
    coords = [points, *([] if box is None else [box.reshape(2, 2)])][::-1]
    tags = [np.asarray(labels, np.float32), *([] if box is None else [np.array([2.0, 3.0])])]
    feeds = {
        **fast["prepared"],
        "point_coords": (np.concatenate(coords) * [side / w, side / h])[None].astype(np.float32),
        "point_labels": np.concatenate(tags[::-1])[None].astype(np.float32),
    }
    got_iou, got_low = fast["click"].run(None, feeds)
    kwargs = {
        "point_coords": points if labels else None,
        "point_labels": np.asarray(labels) if labels else None,
        "box": box,
        "return_logits": True,
    }
    for multimask, indices in ((True, [1, 2, 3]), (False, [0])):
        expected = fast["predictor"].predict(multimask_output=multimask, **kwargs)
        assert_matches_predictor(expected, got_iou, got_low, indices)
