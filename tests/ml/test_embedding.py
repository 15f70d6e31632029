"""Embeddings: parity with ``SamPredictor.set_image``, input forms, serialization, int8 masks.

Tolerances: our batched encoder vs ``SamPredictor.set_image`` on the same model and image,
max abs difference <= 1e-4 (measured 0.0 on CPU). fp16 round trip: relative 2**-11 of each
value plus 1e-7. int8: half a quantization step per channel. Masks decoded from the int8
embedding vs fp32 embedding: IoU >= 0.9 per click, >= 0.95 on average (measured values
are printed).
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything import SamPredictor

from samapp.ml.embedding import (
    ImageEmbedding,
    compute_embeddings,
    set_predictor_embedding,
    to_rgb_array,
)
from samapp.ml.registry import load_model
from samapp.ml.tiny import SAM_TINY_CHECKPOINT

PARITY_ATOL = 1e-4
INT8_MIN_IOU = 0.98
INT8_MIN_MEAN_IOU = 0.95
SMALL_MASK = 200


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_model("sam_tiny", random_init=not SAM_TINY_CHECKPOINT.is_file())


def _scene(h: int = 180, w: int = 240) -> np.ndarray:
    """Flat background with a few solid shapes, plus mild noise."""
    rng = np.random.default_rng(3)
    image = np.full((h, w, 3), (40, 90, 60), np.uint8)
    image[30:110, 20:120] = (220, 40, 40)
    yy, xx = np.mgrid[:h, :w]
    image[(yy - 120) ** 2 + (xx - 170) ** 2 < 45**2] = (30, 60, 230)
    image[140:170, 60:200] = (240, 230, 80)
    noise = rng.integers(-12, 13, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def test_matches_sam_predictor_for_any_image_form(model):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (150, 220, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (300, 120), dtype=np.uint8)
    rgba = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    images = [rgb, Image.fromarray(gray), rgba, gray[:, :, None], Image.fromarray(rgba)]
    expected_rgb = [rgb, np.repeat(gray[:, :, None], 3, 2), rgba[:, :, :3], None, rgba[:, :, :3]]
    expected_rgb[3] = expected_rgb[1]
    embeddings = compute_embeddings(model, images, batch_size=2)
    predictor = SamPredictor(model)
    for embedding, rgb_image in zip(embeddings, expected_rgb, strict=True):
        predictor.set_image(rgb_image)
        assert embedding.original_size == predictor.original_size
        assert embedding.input_size == predictor.input_size
        assert embedding.embedding.dtype == torch.float32
        torch.testing.assert_close(
            embedding.embedding, predictor.features[0], atol=PARITY_ATOL, rtol=0
        )


def test_exif_orientation_is_applied(model):
    array = _scene(120, 200)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    Image.fromarray(array).save(buffer, format="PNG", exif=exif)
    rotated = np.rot90(array, k=-1)
    assert np.array_equal(to_rgb_array(Image.open(buffer)), rotated)
    ours, reference = compute_embeddings(model, [Image.open(buffer), np.ascontiguousarray(rotated)])
    assert ours.original_size == (200, 120)
    torch.testing.assert_close(ours.embedding, reference.embedding, atol=0, rtol=0)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 2), np.uint8)])
def test_rejects_unsupported_arrays(bad):
    with pytest.raises(ValueError, match="Expected"):
        to_rgb_array(bad)


def test_vit_sized_serialization_is_2_mib_fp16_and_1_mib_int8():
    embedding = ImageEmbedding(torch.randn(256, 64, 64), (768, 1024), (480, 640))
    fp16 = embedding.to_bytes("fp16")
    int8 = embedding.to_bytes("int8")
    assert len(fp16) == 2 * 1024 * 1024
    assert len(int8) == 1024 * 1024 + 256 * 4
    x = embedding.embedding
    back = ImageEmbedding.from_bytes(fp16, (256, 64, 64), (768, 1024), (480, 640), "fp16")
    assert back.input_size == (768, 1024)
    assert back.original_size == (480, 640)
    assert ((back.embedding - x).abs() <= x.abs() * 2**-11 + 1e-7).all()
    back8 = ImageEmbedding.from_bytes(int8, (256, 64, 64), (768, 1024), (480, 640), "int8")
    step = x.abs().amax(dim=(1, 2), keepdim=True) / 127
    assert ((back8.embedding - x).abs() <= step / 2 + 1e-6).all()
    with pytest.raises(ValueError, match="Unknown embedding format"):
        embedding.to_bytes("int4")


def test_masks_from_int8_embedding_match_fp32(model):
    image = _scene()
    (embedding,) = compute_embeddings(model, [image])
    shape = tuple(embedding.embedding.shape)
    sizes = (embedding.input_size, embedding.original_size)
    forms = {
        fmt: ImageEmbedding.from_bytes(embedding.to_bytes(fmt), shape, *sizes, fmt)
        for fmt in ("fp16", "int8")
    }
    clicks = [(60, 70), (170, 120), (130, 155), (10, 10), (100, 40), (190, 90)]
    predictor = SamPredictor(model)
    # per candidate mask: (area of the fp32 mask, IoU with it, pixels that differ)
    results: dict[str, list[tuple[int, float, int]]] = {"fp16": [], "int8": []}
    for x, y in clicks:
        set_predictor_embedding(predictor, embedding)
        reference, _, _ = predictor.predict(np.array([[x, y]]), np.array([1]))
        for fmt, form in forms.items():
            set_predictor_embedding(predictor, form)
            masks, _, _ = predictor.predict(np.array([[x, y]]), np.array([1]))
            for got, want in zip(masks, reference, strict=True):
                union, flipped = int((got | want).sum()), int((got ^ want).sum())
                iou = 1.0 if union == 0 else 1 - flipped / union
                results[fmt].append((int(want.sum()), iou, flipped))
    # A click on the background gives candidates of a few dozen pixels, where one flipped
    # pixel moves the IoU by several hundredths: IoU is judged on masks of SMALL_MASK
    # pixels or more, and every mask by the share of the image's pixels that differ.
    pixels = image.shape[0] * image.shape[1]
    ious = {
        fmt: [iou for area, iou, _ in rows if area >= SMALL_MASK] for fmt, rows in results.items()
    }
    differ = {fmt: max(d for *_, d in rows) / pixels for fmt, rows in results.items()}
    for fmt in results:
        print(
            f"{fmt} vs fp32 mask IoU (masks >= {SMALL_MASK} px): mean {np.mean(ious[fmt]):.4f},"
            f" min {np.min(ious[fmt]):.4f}; most pixels differing {differ[fmt]:.4%}"
        )
    assert min(ious["fp16"]) >= 0.99
    assert differ["fp16"] <= 0.0002
    assert min(ious["int8"]) >= INT8_MIN_IOU
    assert differ["int8"] <= 0.002
    assert np.mean(ious["int8"]) >= INT8_MIN_MEAN_IOU
