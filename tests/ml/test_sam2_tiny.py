"""The project's tiny SAM 2 on random initialisation: built by the sam2 package, bundled in the
registry, the same maps from the training encoder as from ``SAM2ImagePredictor``, the browser
graph equal to the predictor at 256 px, segment everything on stored features, training,
resuming and fine-tuning through SAM's code."""

import json
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from pycocotools import mask as mask_utils
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.modeling.sam2_base import SAM2Base

from samapp.ml.finetune import FinetuneConfig
from samapp.ml.registry import MODELS, checkpoint_path, load_model
from samapp.ml.sam2_adapter import Sam2AsSam
from samapp.ml.sam2_automatic import generate_sam2_masks
from samapp.ml.sam2_embedding import compute_sam2_features, feature_sizes, sam2_predictor
from samapp.ml.sam2_finetune import apply_sam2_trained_state, finetune_sam2, make_sam2_sample
from samapp.ml.sam2_models import high_res_shapes
from samapp.ml.sam2_onnx import export_sam2_decoders, run_onnx
from samapp.ml.sam2_tiny import (
    SAM2_TINY_CHECKPOINT,
    SAM2_TINY_CONFIG,
    build_sam2_tiny,
    warm_start_from_sam_tiny,
)
from samapp.ml.synthetic import generate_scene
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, build_sam_tiny
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import init_decoder_attention, make_optimizer, scene_batch, train_step

SIZE = SAM2_TINY_CONFIG.image_size
SIDE = SIZE // 16
H, W = 180, 240  # a non-square image: SAM 2 resizes each axis to the input size


@pytest.fixture(scope="module")
def model() -> SAM2Base:
    torch.manual_seed(0)
    return build_sam2_tiny()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.ascontiguousarray(generate_scene(21, 0).image[:H, :W])


def test_registry_bundles_it_as_a_sam2_model():
    spec = MODELS["sam2_tiny"]
    assert spec.family == "sam2"
    assert spec.url is None
    assert spec.bundled_path == SAM2_TINY_CHECKPOINT
    assert isinstance(load_model("sam2_tiny", random_init=True), SAM2Base)


def test_maps_and_masks_through_the_package_predictor(model, image):
    predictor = sam2_predictor(model)
    predictor.set_image(image)
    features = predictor._features
    assert features["image_embed"].shape == (1, SAM2_TINY_CONFIG.hidden_dim, SIDE, SIDE)
    assert [tuple(f.shape[1:]) for f in features["high_res_feats"]] == high_res_shapes(model)
    assert high_res_shapes(model) == [(8, 4 * SIDE, 4 * SIDE), (16, 2 * SIDE, 2 * SIDE)]
    masks, scores, low_res = predictor.predict(np.array([[100, 60]]), np.array([1]))
    assert masks.shape == (3, H, W)
    assert scores.shape == (3,)
    assert low_res.shape == (3, 4 * SIDE, 4 * SIDE)


def test_training_encoder_gives_the_predictors_maps(model):
    """``Sam2AsSam.encode`` (with gradients, for training) computes what the worker stores."""
    scene = generate_scene(21, 1)  # 256 px: the predictor does not resize it
    (stored,) = compute_sam2_features(model, [scene.image])
    with torch.no_grad():
        embed, high_res = Sam2AsSam(model).encode(
            torch.from_numpy(scene.image).permute(2, 0, 1)[None].float()
        )
    torch.testing.assert_close(embed[0], stored.image_embed, rtol=0, atol=1e-4)
    for ours, theirs in zip(high_res, stored.high_res_feats, strict=True):
        torch.testing.assert_close(ours[0], theirs, rtol=0, atol=1e-4)


def test_browser_graph_equals_the_predictor(model, image, tmp_path):
    manifest = export_sam2_decoders(model, "sam2_tiny", tmp_path, ["lowres_multi"])
    assert manifest["image_size"] == SIZE
    assert manifest["embedding_shape"] == [SAM2_TINY_CONFIG.hidden_dim, SIDE, SIDE]
    assert manifest["mask_input_size"] == [4 * SIDE, 4 * SIDE]
    graph = tmp_path / manifest["variants"]["lowres_multi"]["filename"]
    session = ort.InferenceSession(str(graph))
    (features,) = compute_sam2_features(model, [image])
    predictor = sam2_predictor(model)
    predictor.set_image(image)
    points = np.array([[100.0, 60.0], [200.0, 150.0]], np.float32)
    labels = np.array([1, 0])
    scale = np.array([SIZE / W, SIZE / H], np.float32)
    inputs = {
        "image_embeddings": features.image_embed[None],
        "high_res_feats_0": features.high_res_feats[0][None],
        "high_res_feats_1": features.high_res_feats[1][None],
        "point_coords": torch.from_numpy(points * scale)[None],
        "point_labels": torch.from_numpy(labels.astype(np.float32))[None],
        "mask_input": torch.zeros(1, 1, 4 * SIDE, 4 * SIDE),
        "has_mask_input": torch.tensor([0.0]),
    }
    got_iou, got_low = run_onnx(session, inputs)
    for multimask, indices in ((True, [1, 2, 3]), (False, [0])):
        _, scores, low_res = predictor.predict(
            points, labels, multimask_output=multimask, return_logits=True
        )
        np.testing.assert_allclose(got_iou[0, indices], scores, atol=1e-3, rtol=0)
        np.testing.assert_allclose(got_low[0, indices], low_res, atol=1e-3, rtol=0)


def test_segment_everything_on_stored_features_matches_the_package(model):
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    image = generate_scene(22, 0).image
    (features,) = compute_sam2_features(model, [image])
    ours = generate_sam2_masks(model, image, features, **options)
    package = SAM2AutomaticMaskGenerator(model, output_mode="coco_rle", **options)
    # The package's predictor assumes 1024 px feature sizes; the project's paths set them.
    package.predictor._bb_feat_sizes = feature_sizes(model)
    theirs = package.generate(image)
    assert len(ours) == len(theirs) > 0
    by_point = {tuple(map(tuple, r["point_coords"])): r for r in ours}
    for record in theirs:
        mine = by_point[tuple(map(tuple, record["point_coords"]))]
        a, b = (mask_utils.decode(r["segmentation"]).astype(bool) for r in (mine, record))
        assert (a == b).mean() > 0.999


def test_whole_model_training_lowers_the_loss():
    torch.manual_seed(1)
    view = Sam2AsSam(build_sam2_tiny()).train()
    config = TrainConfig(lr=3e-3, warmup_steps=1, box_probability=0.0, iterations=2)
    init_decoder_attention(view, config.attention_init_gain)
    optimizer, _ = make_optimizer(list(view.parameters()), config)
    images, gts = scene_batch(3, 0, 2, SIZE, "default", torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    losses = [train_step(view, optimizer, images, gts, generator, config)[0] for _ in range(25)]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    # every part of the image path learns, the untrained memory modules do not move
    grads = {n: p.grad for n, p in view.named_parameters()}
    assert grads["model.image_encoder.trunk.patch_embed.proj.weight"].abs().sum() > 0
    assert grads["model.sam_mask_decoder.conv_s0.weight"].abs().sum() > 0
    assert grads["model.memory_attention.norm.weight"] is None


def test_checkpoint_in_either_layout_loads_as_float32(model, tmp_path):
    half = {k: v.half() for k, v in model.state_dict().items()}
    torch.save(half, tmp_path / "bare.pt")
    torch.save({"model": half}, tmp_path / "sam2_tiny.pt")
    assert checkpoint_path("sam2_tiny", tmp_path) == tmp_path / "sam2_tiny.pt"
    bare = build_sam2_tiny(tmp_path / "bare.pt")
    for loaded in (bare, load_model("sam2_tiny", checkpoint_dir=tmp_path)):
        for key, value in loaded.state_dict().items():
            assert value.dtype == model.state_dict()[key].dtype
            torch.testing.assert_close(value, half[key].to(value.dtype), rtol=0, atol=0)


def test_decoder_finetunes_as_sam2_1s(model):
    scene = generate_scene(23, 0)
    (features,) = compute_sam2_features(model, [scene.image])
    sample = make_sam2_sample(features, scene.masks, model.image_size)
    config = FinetuneConfig.from_options(
        {"steps": 2, "images_per_step": 1, "max_objects": 3, "warmup_steps": 1, "seed": 0}
    )
    result = finetune_sam2(model, [sample], config)
    assert len(result.loss_curve) == 2
    version = apply_sam2_trained_state(build_sam2_tiny(), result.state_dict)
    key = "sam_mask_decoder.iou_token.weight"
    torch.testing.assert_close(version.state_dict()[key], result.state_dict[key].float())


def test_command_trains_the_sam2_family_and_resumes(tmp_path, monkeypatch):
    from django.core.management import CommandError, call_command

    from samapp.ml import training

    monkeypatch.setattr(
        training, "evaluate_sam_tiny", lambda sam: {"miou_1_click": 0.5, "miou_3_clicks": 0.6}
    )
    out = tmp_path / "s2.pt"
    options = {"family": "sam2", "out": out, "steps": 2, "threads": 1}
    with pytest.raises(CommandError, match="--resume"):
        call_command("sam_train_tiny", minutes=1e-6, **options)
    assert (tmp_path / "s2.state.pt").exists()
    call_command("sam_train_tiny", resume=True, **options)
    assert not (tmp_path / "s2.state.pt").exists()
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["model_config"]["image_size"] == SIZE
    assert metrics["torch_threads"] == 1
    assert out.stat().st_size < 8 * 2**20
    assert isinstance(build_sam2_tiny(out), SAM2Base)  # strict keys


def test_warm_start_copies_sam_tinys_prompt_encoder_and_decoder():
    torch.manual_seed(2)
    sam2 = build_sam2_tiny()
    assert sam2.sam_mask_decoder.conv_s0.weight.abs().sum() == 0  # high-res route closed
    obj_score = sam2.sam_mask_decoder.obj_score_token.weight.clone()
    warm_start_from_sam_tiny(sam2)
    sam = build_sam_tiny(SAM_TINY_CHECKPOINT)
    pairs = {
        "sam_prompt_encoder.point_embeddings.1.weight": "prompt_encoder.point_embeddings.1.weight",
        "sam_mask_decoder.transformer.layers.1.mlp.layers.1.weight": (
            "mask_decoder.transformer.layers.1.mlp.lin2.weight"
        ),
        "sam_mask_decoder.output_hypernetworks_mlps.2.layers.0.bias": (
            "mask_decoder.output_hypernetworks_mlps.2.layers.0.bias"
        ),
    }
    ours, theirs = sam2.state_dict(), sam.state_dict()
    for sam2_key, sam_key in pairs.items():
        assert torch.equal(ours[sam2_key], theirs[sam_key])
    assert torch.equal(sam2.sam_mask_decoder.obj_score_token.weight, obj_score)
    narrow = build_sam2_tiny(config=replace(SAM2_TINY_CONFIG, hidden_dim=32))
    with pytest.raises(KeyError, match="no counterpart"):
        warm_start_from_sam_tiny(narrow)


def test_config_dimensions_reach_the_built_model():
    config = replace(SAM2_TINY_CONFIG, image_size=128, trunk_embed_dim=16, hidden_dim=32)
    small = build_sam2_tiny(config=config)
    assert small.image_size == 128
    assert small.sam_prompt_encoder.embed_dim == 32
    assert small.image_encoder.trunk.channel_list == [128, 64, 32, 16]
