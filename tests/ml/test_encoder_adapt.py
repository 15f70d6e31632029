"""samapp.ml.encoder_adapt and the encoder modes of samapp.ml.finetune: no Django, a small
SAM, a few steps."""

import copy

import numpy as np
import pytest
import torch

from samapp.ml.augment import paste_objects
from samapp.ml.embedding import compute_embeddings
from samapp.ml.encoder_adapt import (
    EncoderAdaptConfig,
    LoRALinear,
    adapt_encoder,
    attention_modules,
    encoder_state_dict,
    merge_lora,
    unwrap_lora,
)
from samapp.ml.finetune import (
    FinetuneConfig,
    apply_trained_state,
    combine_states,
    encoder_input,
    finetune,
    has_encoder_state,
    make_image_sample,
)
from samapp.ml.model_keys import (
    embedding_model_key,
    has_own_encoder,
    parse_version_key,
    registry_model_key,
    version_model_key,
)
from samapp.ml.synthetic import generate_scene
from samapp.ml.tiny import build_sam_tiny
from tests.ml.small_models import SMALL


@pytest.fixture(scope="module")
def small() -> tuple:
    torch.manual_seed(0)
    sam = build_sam_tiny(config=SMALL)
    scenes = [generate_scene(5, i, "novel", size=96) for i in range(4)]
    return sam, scenes


def _encode(sam, scenes) -> torch.Tensor:
    return torch.stack([e.embedding for e in compute_embeddings(sam, [s.image for s in scenes])])


def _randomise_lora(sam) -> None:
    with torch.no_grad():
        for module in sam.image_encoder.modules():
            if isinstance(module, LoRALinear):
                module.lora_b.normal_(0.0, 0.05)


def test_lora_starts_as_the_base_linear_and_has_low_rank_shapes() -> None:
    torch.manual_seed(0)
    base = torch.nn.Linear(32, 96)
    adapter = LoRALinear(copy.deepcopy(base), rank=4, alpha=8.0)
    x = torch.randn(2, 5, 32)
    assert torch.equal(adapter(x), base(x))  # B is zero: training starts from the base model
    assert adapter.lora_a.shape == (4, 32)
    assert adapter.lora_b.shape == (96, 4)
    assert adapter.delta().shape == (96, 32)
    assert not adapter.base.weight.requires_grad


def test_lora_mode_freezes_everything_but_the_adapters(small) -> None:
    sam = copy.deepcopy(small[0])
    params = adapt_encoder(sam, EncoderAdaptConfig(mode="lora", rank=2, blocks=1))
    trainable = {n for n, p in sam.image_encoder.named_parameters() if p.requires_grad}
    last = attention_modules(sam)[-1][0]
    assert trainable == {f"{last}.{t}.lora_{f}" for t in ("qkv", "proj") for f in "ab"}
    assert len(params) == 4
    assert all(p.requires_grad for p in params)
    assert len(attention_modules(small[0])) == SMALL.encoder_depth


def test_blocks_mode_trains_the_last_blocks_and_the_neck(small) -> None:
    sam = copy.deepcopy(small[0])
    params = adapt_encoder(sam, EncoderAdaptConfig(mode="blocks", blocks=1))
    trainable = {n for n, p in sam.image_encoder.named_parameters() if p.requires_grad}
    assert trainable
    assert all(n.startswith(("blocks.1.", "neck.")) for n in trainable)
    assert any(n.startswith("neck.") for n in trainable)
    assert len(params) == len(trainable)
    assert adapt_encoder(copy.deepcopy(small[0]), EncoderAdaptConfig()) == []  # frozen


def test_stored_lora_factors_reproduce_the_adapted_encoder(small) -> None:
    sam, scenes = small
    adapted = copy.deepcopy(sam)
    config = EncoderAdaptConfig(mode="lora", rank=3)
    adapt_encoder(adapted, config)
    _randomise_lora(adapted)
    state = encoder_state_dict(adapted, config)
    assert state
    assert all(v.dtype == torch.float16 for v in state.values())
    assert {k.rsplit(".", 1)[1] for k in state} == {"lora_a", "lora_b"}
    expected = _encode(adapted, scenes)
    loaded = apply_trained_state(copy.deepcopy(sam), state)
    assert not any(isinstance(m, LoRALinear) for m in loaded.modules())  # merged: plain linears
    assert torch.allclose(_encode(loaded, scenes), expected, atol=2e-2)
    assert not torch.allclose(_encode(sam, scenes), expected, atol=2e-2)
    merged = unwrap_lora(copy.deepcopy(adapted))  # in place, without the fp16 round trip
    assert torch.allclose(_encode(merged, scenes), expected, atol=1e-4)


def test_merge_then_unmerge_restores_the_weights(small) -> None:
    sam = copy.deepcopy(small[0])
    before = copy.deepcopy(sam.state_dict())
    adapted = copy.deepcopy(sam)
    config = EncoderAdaptConfig(mode="lora", rank=2)
    adapt_encoder(adapted, config)
    _randomise_lora(adapted)
    state = encoder_state_dict(adapted, config)
    merge_lora(sam, state)
    qkv = f"image_encoder.{attention_modules(sam)[0][0]}.qkv.weight"
    assert not torch.equal(sam.state_dict()[qkv], before[qkv])
    merge_lora(sam, state, sign=-1.0)
    assert all(torch.allclose(v, before[k], atol=1e-6) for k, v in sam.state_dict().items())
    with pytest.raises(KeyError, match="without its lora_b"):
        merge_lora(sam, {k: v for k, v in state.items() if not k.endswith("lora_b")})
    wrong = {k: (v[:, :-1] if k.endswith("lora_a") else v) for k, v in state.items()}
    with pytest.raises(ValueError, match="do not fit"):
        merge_lora(sam, wrong)


def test_combined_versions_sum_their_updates(small) -> None:
    sam = small[0]
    key = f"image_encoder.{attention_modules(sam)[0][0]}.qkv"
    a1, b1, a2, b2 = (
        torch.randn(2, 32),
        torch.randn(96, 2),
        torch.randn(3, 32),
        torch.randn(96, 3),
    )
    parent = {f"{key}.lora_a": a1, f"{key}.lora_b": b1, "mask_decoder.x": torch.zeros(1)}
    child = {f"{key}.lora_a": a2, f"{key}.lora_b": b2, "mask_decoder.x": torch.ones(1)}
    both = combine_states(parent, child)
    assert torch.allclose(
        both[f"{key}.lora_b"] @ both[f"{key}.lora_a"], b1 @ a1 + b2 @ a2, atol=1e-4
    )
    assert torch.equal(both["mask_decoder.x"], torch.ones(1))
    # A child trained on the full weight already holds the parent's update.
    full = combine_states(parent, {f"{key}.weight": torch.zeros(96, 32)})
    assert f"{key}.lora_a" not in full
    assert f"{key}.weight" in full


@pytest.mark.parametrize("mode", ["lora", "blocks"])
def test_finetune_adapts_the_encoder_and_leaves_the_rest_frozen(small, mode) -> None:
    sam, scenes = small
    before = copy.deepcopy(sam.state_dict())
    samples = [make_image_sample(sam, s.image, s.masks) for s in scenes]
    assert samples[0].pixels is not None
    assert samples[0].pixels.shape == (3, 64, 64)
    config = FinetuneConfig.from_options(
        {"steps": 6, "images_per_step": 2, "lr": 5e-3, "iterations": 1, "warmup_steps": 1}
        | {"encoder_mode": mode, "encoder_blocks": 1, "encoder_rank": 2}
    )
    result = finetune(sam, samples, config)
    assert all(torch.equal(v, before[k]) for k, v in sam.state_dict().items())  # untouched
    assert has_encoder_state(result.state_dict)
    encoder_keys = {k for k in result.state_dict if k.startswith("image_encoder.")}
    last = f"image_encoder.{attention_modules(sam)[-1][0].rsplit('.', 1)[0]}."
    assert all(k.startswith((last, "image_encoder.neck.")) for k in encoder_keys)
    tuned = apply_trained_state(copy.deepcopy(sam), result.state_dict)
    # Beyond the fp16 rounding of the stored (untrained) prompt encoder.
    changed = {
        k
        for k, v in tuned.state_dict().items()
        if not torch.allclose(v, before[k], rtol=1e-3, atol=1e-3)
    }
    assert changed
    assert all(k.startswith((last, "image_encoder.neck.", "mask_decoder.")) for k in changed)
    assert any(k.startswith(last) for k in changed)
    first_block = "image_encoder.patch_embed.proj.weight"
    assert torch.equal(tuned.state_dict()[first_block], before[first_block])


def test_copy_paste_pastes_another_images_objects_into_each_image_of_a_step(
    small, monkeypatch
) -> None:
    from samapp.ml import finetune as finetune_module

    sam, scenes = small
    samples = [make_image_sample(sam, s.image, s.masks) for s in scenes]
    pasted: list[tuple] = []

    def recorded(target, source, count, generator):
        pasted.append((source[1].shape[0], count))
        return paste_objects(target, source, count, generator)

    monkeypatch.setattr(finetune_module, "paste_objects", recorded)
    options = {"steps": 3, "images_per_step": 2, "iterations": 1, "encoder_mode": "lora"}
    finetune(sam, samples, FinetuneConfig.from_options(options))  # on by default: 2
    assert len(pasted) == 3 * 2
    assert all(1 <= count <= 2 for _, count in pasted)
    assert {n for n, _ in pasted} <= {int(s.masks.shape[0]) for s in samples}
    pasted.clear()
    finetune(sam, samples, FinetuneConfig.from_options(options | {"copy_paste": 0}))
    assert pasted == []


def test_encoder_input_is_the_predictors_preprocessing(small) -> None:
    sam, scenes = small
    pixels = encoder_input(sam, scenes[0].image)
    with torch.inference_mode():
        ours = sam.image_encoder(pixels[None])[0]
    (theirs,) = compute_embeddings(sam, [scenes[0].image])
    assert torch.allclose(ours, theirs.embedding, atol=1e-4)
    assert np.isfinite(pixels.numpy()).all()


def test_own_encoder_version_keys() -> None:
    key = version_model_key("sam_tiny", 4, 2, own_encoder=True)
    assert key == "sam_tiny-p4v2e"
    assert has_own_encoder(key)
    assert parse_version_key(key) == ("sam_tiny", 4, 2)
    assert embedding_model_key(key) == key
    assert registry_model_key(key) == "sam_tiny"
    assert not has_own_encoder("sam_tiny-p4v2")
    assert embedding_model_key("sam_tiny-p4v2") == "sam_tiny"
    assert not has_own_encoder("sam_tiny")


def test_adapters_train_through_the_sdpa_encoder(small) -> None:
    from samapp.ml.fast_encoder import use_sdpa_attention

    sam, scenes = small
    pixels = torch.stack([encoder_input(sam, s.image) for s in scenes[:2]])
    grads = []
    for model in (copy.deepcopy(sam), use_sdpa_attention(copy.deepcopy(sam))):
        torch.manual_seed(0)  # the same adapters in both
        params = adapt_encoder(model, EncoderAdaptConfig(mode="lora", rank=2))
        with torch.no_grad():
            for p in params[1::2]:  # B: nonzero, so that A gets a gradient too
                p.fill_(0.01)
        model.image_encoder(pixels).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)
