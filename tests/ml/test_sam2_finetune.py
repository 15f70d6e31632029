"""Fine-tuning SAM 2.1's decoder on stored features (random-init Hiera-T, one synthetic
scene): the loss on a fixed batch falls, only the decoder side changes, and the trained
version's browser decoder exports, loads and runs the trained weights."""

import copy

import onnxruntime as ort
import pytest
import torch

from samapp.ml.finetune import FinetuneConfig
from samapp.ml.registry import load_model
from samapp.ml.sam2_embedding import compute_sam2_features
from samapp.ml.sam2_finetune import (
    TRAINED_PREFIXES,
    Sam2AsSam,
    apply_sam2_trained_state,
    finetune_sam2,
    make_sam2_sample,
    sam2_batch_loss,
)
from samapp.ml.sam2_onnx import Sam2OnnxDecoder, dummy_inputs, export_sam2_decoders, run_onnx
from samapp.ml.synthetic import generate_scene

CONFIG = FinetuneConfig.from_options(
    {"steps": 12, "images_per_step": 1, "max_objects": 4, "lr": 1e-3, "warmup_steps": 1}
    | {"iterations": 2, "seed": 0}
)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = load_model("sam2.1_hiera_tiny", random_init=True)
    scene = generate_scene(7, 0)
    (features,) = compute_sam2_features(model, [scene.image])
    sample = make_sam2_sample(features, scene.masks, model.image_size)
    result = finetune_sam2(model, [sample], CONFIG)
    version = apply_sam2_trained_state(copy.deepcopy(model), result.state_dict).eval()
    return model, sample, result, version


def _fixed_loss(model, sample) -> float:
    """The loss on the same objects, prompts and box draws (seeded)."""
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        loss, _ = sam2_batch_loss(Sam2AsSam(model), [sample], [False], generator, CONFIG)
    return float(loss)


def test_loss_on_a_fixed_batch_falls(trained) -> None:
    model, sample, result, version = trained
    assert sample.masks.shape[1:] == (1024, 1024)
    assert sample.masks.shape[0] >= 2
    before, after = _fixed_loss(model, sample), _fixed_loss(version, sample)
    print(f"fixed-batch loss {before:.4f} -> {after:.4f}; curve {result.loss_curve}")
    assert len(result.loss_curve) == CONFIG.recipe.steps
    assert after < 0.9 * before


def test_only_the_decoder_side_changes(trained) -> None:
    model, _, result, version = trained
    assert result.state_dict
    assert all(k.startswith(TRAINED_PREFIXES) for k in result.state_dict)
    assert all(v.dtype == torch.float16 for v in result.state_dict.values())
    base, new = model.state_dict(), version.state_dict()
    assert all(torch.equal(base[k], new[k]) for k in base if not k.startswith(TRAINED_PREFIXES))
    stored = result.state_dict
    changed = {k for k in stored if not torch.equal(stored[k], base[k].half())}
    assert any(k.startswith("sam_mask_decoder.transformer.") for k in changed)
    # The encoder made the stored maps, conv_s0/conv_s1 included: they must stay as they were.
    assert not [k for k in changed if ".conv_s0." in k or ".conv_s1." in k]
    with pytest.raises(KeyError):
        apply_sam2_trained_state(copy.deepcopy(model), {"image_encoder.neck.x": torch.zeros(1)})


def test_the_versions_browser_decoder_exports_and_runs_its_weights(trained, tmp_path) -> None:
    model, _, _, version = trained
    manifest = export_sam2_decoders(version, "sam2.1_hiera_tiny-p1v1", tmp_path, ["lowres_multi"])
    entry = manifest["variants"]["lowres_multi"]
    session = ort.InferenceSession(str(tmp_path / entry["filename"]))
    inputs = dummy_inputs(version, num_points=2, seed=5)
    iou, logits = run_onnx(session, inputs)
    want_iou, want_logits = Sam2OnnxDecoder(version)(*inputs.values())
    torch.testing.assert_close(torch.from_numpy(logits), want_logits, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(torch.from_numpy(iou), want_iou, atol=1e-3, rtol=1e-3)
    _, base_logits = Sam2OnnxDecoder(model)(*inputs.values())
    assert (base_logits - want_logits).abs().max() > 1e-2  # the trained weights, not the base's
