"""SAM 2.1 registry entries: built from the sam2 package's configs, loaded strictly from the
official checkpoint layout, and usable by the package's own ``SAM2ImagePredictor``."""

import numpy as np
import pytest
import torch
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from samapp.ml.model_keys import parse_version_key, version_model_key
from samapp.ml.registry import MODELS, checkpoint_path, load_model
from samapp.ml.sam2_models import SAM2_CONFIGS, high_res_shapes

SAM2_KEYS = [
    "sam2.1_hiera_tiny",
    "sam2.1_hiera_small",
    "sam2.1_hiera_base_plus",
    "sam2.1_hiera_large",
]


def test_registry_has_the_four_sam2_1_models_with_official_files():
    for key in SAM2_KEYS:
        spec = MODELS[key]
        assert spec.family == "sam2"
        assert key in SAM2_CONFIGS
        assert spec.url == f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/{key}.pt"
        assert spec.filename == f"{key}.pt"
        assert len(spec.sha256 or "") == 64
        assert (spec.size_bytes or 0) > 100_000_000
        assert spec.automatic["points_per_side"] == 32


@pytest.mark.parametrize("key", ["sam2.1_hiera_tiny", "sam2.1_hiera_small"])
def test_architecture_matches_the_official_checkpoint_size(key):
    """The official file is ``torch.save({"model": state_dict})``: its tensors plus a few
    hundred bytes of zip and pickle overhead per entry (B+ and L were checked the same way
    once; they take a minute to build on two cores)."""
    state = MODELS[key].build().state_dict()
    tensor_bytes = sum(t.numel() * t.element_size() for t in state.values())
    overhead = (MODELS[key].size_bytes or 0) - tensor_bytes
    assert 0 < overhead < 512 * len(state), (key, overhead, len(state))


@pytest.fixture(scope="module")
def tiny() -> SAM2Base:
    torch.manual_seed(0)
    return load_model("sam2.1_hiera_tiny", random_init=True)


def test_random_init_tiny_predicts_with_the_package_predictor(tiny):
    assert isinstance(tiny, SAM2Base)
    assert not tiny.training
    predictor = SAM2ImagePredictor(tiny)
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    predictor.set_image(image)
    features = predictor._features
    assert features["image_embed"].shape == (1, 256, 64, 64)
    assert [tuple(f.shape[1:]) for f in features["high_res_feats"]] == high_res_shapes(tiny)
    assert high_res_shapes(tiny) == [(32, 256, 256), (64, 128, 128)]
    masks, scores, low_res = predictor.predict(np.array([[40, 30]]), np.array([1]))
    assert masks.shape == (3, 96, 128)
    assert scores.shape == (3,)
    assert low_res.shape == (3, 256, 256)


def test_official_checkpoint_layout_loads_strictly(tmp_path, tiny):
    state = tiny.state_dict()
    torch.save({"model": state}, tmp_path / "sam2.1_hiera_tiny.pt")
    assert checkpoint_path("sam2.1_hiera_tiny", tmp_path) == tmp_path / "sam2.1_hiera_tiny.pt"
    loaded = load_model("sam2.1_hiera_tiny", checkpoint_dir=tmp_path)
    key = "sam_mask_decoder.iou_token.weight"
    torch.testing.assert_close(loaded.state_dict()[key], state[key], rtol=0, atol=0)
    del state[key]
    torch.save({"model": state}, tmp_path / "sam2.1_hiera_tiny.pt")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_model("sam2.1_hiera_tiny", checkpoint_dir=tmp_path)


def test_dotted_keys_make_version_keys():
    key = version_model_key("sam2.1_hiera_tiny", 3, 2)
    assert parse_version_key(key) == ("sam2.1_hiera_tiny", 3, 2)
    assert parse_version_key("..-p3v2") is None
