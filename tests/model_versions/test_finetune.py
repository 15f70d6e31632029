"""samapp.ml.finetune / similarity / model_keys: no Django, a small SAM, a few steps."""

import copy

import numpy as np
import pytest
import torch

from samapp.ml.embedding import ImageEmbedding, compute_embeddings
from samapp.ml.finetune import (
    FinetuneConfig,
    apply_trained_state,
    evaluate_embeddings,
    finetune,
    make_sample,
    masks_to_input_frame,
    trained_state_dict,
)
from samapp.ml.model_keys import (
    embedding_model_key,
    is_version_key,
    parse_version_key,
    version_model_key,
)
from samapp.ml.similarity import mask_embedding, nearest_label
from samapp.ml.synthetic import generate_scene
from samapp.ml.tiny import build_sam_tiny
from tests.ml.small_models import SMALL


@pytest.fixture(scope="module")
def small() -> tuple:
    torch.manual_seed(0)
    sam = build_sam_tiny(config=SMALL)
    scenes = [generate_scene(3, i, "novel", size=96) for i in range(4)]
    embeddings = compute_embeddings(sam, [s.image for s in scenes])
    return sam, scenes, embeddings


def test_version_keys_round_trip() -> None:
    key = version_model_key("sam_tiny", 12, 3)
    assert key == "sam_tiny-p12v3"
    assert is_version_key(key)
    assert parse_version_key(key) == ("sam_tiny", 12, 3)
    assert embedding_model_key(key) == "sam_tiny" == embedding_model_key("sam_tiny")
    assert parse_version_key("sam_vit_b") is None
    assert not is_version_key("mobile_sam")


def test_masks_go_to_the_padded_input_frame() -> None:
    mask = np.zeros((50, 100), bool)
    mask[10:20, 50:100] = True
    frame = masks_to_input_frame(mask[None], 64)
    assert frame.shape == (1, 64, 64)
    assert frame.dtype == torch.bool
    assert not frame[0, 32:].any()  # 100x50 -> 64x32, padded below
    assert frame[0, 8, 40]
    assert frame[0, 8, 63]
    assert not frame[0, 8, 20]


def test_finetune_trains_only_the_decoder_and_learns(small) -> None:
    sam, scenes, embeddings = small
    before = copy.deepcopy(sam.state_dict())
    samples = [make_sample(e, s.masks, SMALL.img_size) for e, s in zip(embeddings, scenes)]
    steps = []
    result = finetune(
        sam,
        samples,
        FinetuneConfig.from_options(
            {"steps": 40, "images_per_step": 2, "lr": 5e-3, "iterations": 1, "warmup_steps": 2}
        ),
        on_step=lambda step, loss, iou: steps.append(step),
    )
    assert steps == list(range(1, 41))
    assert len(result.loss_curve) == 40
    assert np.mean(result.loss_curve[-10:]) < np.mean(result.loss_curve[:10])
    assert all(torch.equal(v, before[k]) for k, v in sam.state_dict().items())  # untouched
    keys = set(result.state_dict)
    assert keys == {k for k in before if k.startswith(("mask_decoder.", "prompt_encoder."))}
    assert all(v.dtype == torch.float16 for v in result.state_dict.values())
    tuned = apply_trained_state(copy.deepcopy(sam), result.state_dict)
    encoder = "image_encoder.patch_embed.proj.weight"
    assert torch.equal(tuned.state_dict()[encoder], before[encoder])
    assert not torch.equal(
        tuned.state_dict()["mask_decoder.iou_token.weight"], before["mask_decoder.iou_token.weight"]
    )
    assert trained_state_dict(tuned).keys() == keys


def test_apply_trained_state_rejects_foreign_or_partial_weights(small) -> None:
    sam = copy.deepcopy(small[0])
    state = trained_state_dict(sam)
    with pytest.raises(KeyError, match="Not fine-tunable"):
        apply_trained_state(sam, {**state, "image_encoder.nowhere.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="Not fine-tunable"):
        apply_trained_state(sam, {**state, "pixel_mean": torch.zeros(3, 1, 1)})
    partial = dict(state)
    partial.pop("mask_decoder.iou_token.weight")
    with pytest.raises(KeyError, match="Partial mask_decoder"):
        apply_trained_state(sam, partial)


def test_evaluation_report_on_stored_embeddings(small) -> None:
    sam, scenes, embeddings = small
    metrics = evaluate_embeddings(sam, embeddings, [s.masks for s in scenes], clicks=5)
    assert metrics["objects"] == sum(len(s.masks) for s in scenes)
    assert metrics["clicks"] == 5
    assert {"miou_1", "miou_3", "miou_5", "noc_85", "noc_90"} <= set(metrics)
    assert 1 <= metrics["noc_85"] <= metrics["noc_90"] <= 5
    # Same numbers from the image itself: the embedding path is the predictor's own.
    raw = evaluate_embeddings(sam, [s.image for s in scenes], [s.masks for s in scenes], 5)
    assert raw == pytest.approx(metrics, abs=1e-3)


def test_mask_embeddings_label_by_nearest_examples() -> None:
    embedding = torch.zeros(4, 8, 8)
    embedding[0, :4] = 1.0  # top half: channel 0
    embedding[1, 4:] = 1.0  # bottom half: channel 1
    top = np.zeros((64, 64), bool)
    top[:16] = True
    bottom = np.zeros((64, 64), bool)
    bottom[48:] = True
    a, b = mask_embedding(embedding, top, 64), mask_embedding(embedding, bottom, 64)
    assert a is not None
    assert b is not None
    assert a == pytest.approx([1, 0, 0, 0])
    assert b == pytest.approx([0, 1, 0, 0])
    assert mask_embedding(embedding, np.zeros((64, 64), bool), 64) is None
    examples = np.stack([a, b, b])
    assert nearest_label(a, examples, [7, 9, 9], k=1) == (7, pytest.approx(1.0))
    assert nearest_label(b, examples, [7, 9, 9])[0] == 9
    assert nearest_label(a, np.zeros((0, 4), np.float32), []) == (None, 0.0)


def test_mask_embeddings_follow_each_familys_input_frame() -> None:
    """SAM pads a 64x32 image below to a square (its grid's lower half is padding); SAM 2
    stretches it (the grid covers the image)."""
    embedding = torch.zeros(2, 8, 8)
    embedding[0, :4] = 1.0  # grid's top half
    embedding[1, 4:] = 1.0  # grid's bottom half
    lower_half = np.zeros((32, 64), bool)
    lower_half[16:] = True
    padded = mask_embedding(embedding, lower_half, 64)
    stretched = mask_embedding(embedding, lower_half, 64, stretched=True)
    assert padded == pytest.approx([1, 0])  # rows 16-31 of 64: still the grid's top half
    assert stretched == pytest.approx([0, 1])


def test_image_embedding_is_accepted_by_make_sample() -> None:
    embedding = ImageEmbedding(torch.ones(4, 8, 8), (64, 64), (64, 64))
    empty, full = np.zeros((64, 64), bool), np.ones((64, 64), bool)
    sample = make_sample(embedding, [empty, full], 64)
    assert sample.masks.shape == (1, 64, 64)  # the empty object is dropped
