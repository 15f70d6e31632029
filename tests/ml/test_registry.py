"""Model registry: every entry builds a ``Sam`` that SAM's predictor accepts; strict loading."""

import pickle

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from samapp.ml.embedding import ImageEmbedding, set_predictor_embedding
from samapp.ml.registry import (
    MODELS,
    CheckpointNotFoundError,
    UnknownModelError,
    checkpoint_path,
    load_model,
    resolve_device,
)

OFFICIAL = [n for n, spec in MODELS.items() if spec.url is not None and spec.family == "sam"]


def test_registry_lists_the_models():
    sam = {"sam_vit_b", "sam_vit_l", "sam_vit_h", "mobile_sam", "sam_tiny"}
    assert {name for name, spec in MODELS.items() if spec.family == "sam"} == sam
    for name in OFFICIAL:
        spec = MODELS[name]
        assert spec.url.startswith("https://")
        assert len(spec.sha256) == 64
        assert spec.size_bytes > 0


@pytest.mark.parametrize("name", OFFICIAL)
def test_architecture_matches_the_official_checkpoint_size(name):
    """The official file is a ``torch.save``d state dict: its tensors plus a few hundred bytes
    of zip and pickle overhead per entry. Built on the meta device, so no weights are made.
    A missing or extra layer (e.g. MobileSAM's unused 320x1000 head, 1.28 MB) breaks it."""
    with torch.device("meta"):
        model = MODELS[name].build()
    state = model.state_dict()
    tensor_bytes = sum(t.numel() * t.element_size() for t in state.values())
    overhead = MODELS[name].size_bytes - tensor_bytes
    assert 0 < overhead < 512 * len(state), (name, overhead, len(state))


@pytest.mark.parametrize("name", ["sam_tiny", "mobile_sam", "sam_vit_b"])
def test_random_init_model_works_with_sam_predictor(name):
    """Full ``set_image`` for our encoders; ViT-B (SAM's own encoder, ~10 s per 1024 px forward
    on 2 CPU cores) decodes from a random embedding of the right shape instead."""
    model = load_model(name, random_init=True)
    assert isinstance(model, Sam)
    assert not model.training
    predictor = SamPredictor(model)
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    if name == "sam_vit_b":
        embedding = ImageEmbedding(torch.randn(256, 64, 64), (768, 1024), (96, 128))
        set_predictor_embedding(predictor, embedding)
    else:
        predictor.set_image(image)
        side = model.prompt_encoder.image_embedding_size[0]
        assert predictor.features.shape == (1, model.prompt_encoder.embed_dim, side, side)
    masks, scores, low_res = predictor.predict(np.array([[40, 30]]), np.array([1]))
    assert masks.shape == (3, 96, 128)
    assert masks.dtype == bool
    assert scores.shape == (3,)
    side = 4 * model.prompt_encoder.image_embedding_size[0]
    assert low_res.shape == (3, side, side)


@pytest.mark.parametrize("name", ["sam_tiny", "sam2.1_hiera_tiny"])
def test_random_init_weights_do_not_depend_on_what_ran_before(name):
    """A random model stands in for a missing checkpoint in every process (web, workers): they
    must agree on its weights, and building it leaves the caller's random stream alone."""
    torch.manual_seed(1)
    first = load_model(name, random_init=True).state_dict()
    after_first = torch.rand(3)
    torch.manual_seed(2)
    second = load_model(name, random_init=True).state_dict()
    for key, value in first.items():
        torch.testing.assert_close(second[key], value, rtol=0, atol=0)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after_first)


def test_missing_checkpoint_names_the_download_command(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"python manage\.py sam_download sam_vit_h"):
        load_model("sam_vit_h", checkpoint_dir=tmp_path)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModelError, match="known models: mobile_sam"):
        load_model("sam_vit_x")


@pytest.fixture
def tiny_state():
    torch.manual_seed(0)
    return load_model("sam_tiny", random_init=True).state_dict()


def test_checkpoint_in_dir_is_loaded(tmp_path, tiny_state):
    torch.save(tiny_state, tmp_path / "sam_tiny.pt")
    assert checkpoint_path("sam_tiny", tmp_path) == tmp_path / "sam_tiny.pt"
    model = load_model("sam_tiny", checkpoint_dir=tmp_path, dtype=torch.float64)
    for key, value in model.state_dict().items():
        assert value.dtype == (torch.float64 if value.is_floating_point() else value.dtype)
        torch.testing.assert_close(value, tiny_state[key].to(value.dtype), rtol=0, atol=0)


@pytest.mark.parametrize("corruption", ["missing", "unexpected", "shape"])
def test_strict_loading_rejects_a_mismatched_state_dict(tmp_path, tiny_state, corruption):
    key = "mask_decoder.iou_token.weight"
    if corruption == "missing":
        del tiny_state[key]
    elif corruption == "unexpected":
        tiny_state["image_encoder.extra"] = torch.zeros(1)
    else:
        tiny_state[key] = torch.zeros(2, 3)
    torch.save(tiny_state, tmp_path / "sam_tiny.pt")
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict"):
        load_model("sam_tiny", checkpoint_dir=tmp_path)


class _Payload:
    """Stands for arbitrary pickled code in a malicious checkpoint."""


def test_loading_refuses_pickled_objects(tmp_path, tiny_state):
    torch.save({**tiny_state, "payload": _Payload()}, tmp_path / "sam_tiny.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_model("sam_tiny", checkpoint_dir=tmp_path)


def test_device_auto_picks_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
