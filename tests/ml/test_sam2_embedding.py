"""SAM 2 packed features: layout, round trips, the TS fixture, reuse by the predictor."""

import base64
import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from samapp.ml.sam2_automatic import generate_sam2_masks
from samapp.ml.sam2_embedding import (
    FEATURE_NAMES,
    Sam2ImageFeatures,
    pack_tensors,
    sam2_predictor,
    unpack_tensors,
)
from samapp.ml.sam2_tiny import build_sam2_tiny

FIXTURES = Path(__file__).resolve().parents[2] / "frontend" / "tests" / "fixtures"


def features(seed: int = 0) -> Sam2ImageFeatures:
    g = torch.Generator().manual_seed(seed)
    return Sam2ImageFeatures(
        image_embed=torch.randn(8, 4, 4, generator=g),
        high_res_feats=(torch.randn(2, 16, 16, generator=g), torch.randn(3, 8, 8, generator=g)),
        input_size=(64, 64),
        original_size=(30, 40),
    )


def test_fp16_round_trip_keeps_every_map_and_aligns_offsets():
    f = features()
    blob = f.to_bytes("fp16")
    assert blob[:4] == b"SAMF"
    header_end = 12 + int.from_bytes(blob[8:12], "little")
    assert header_end % 8 == 0
    back = Sam2ImageFeatures.from_bytes(blob, f.input_size, f.original_size)
    for want, got in zip(
        (f.image_embed, *f.high_res_feats), (back.image_embed, *back.high_res_feats), strict=True
    ):
        torch.testing.assert_close(got, want.half().float(), rtol=0, atol=0)
    assert len(blob) - header_end == 2 * (8 * 16 + 2 * 256 + 3 * 64)


def test_int8_is_per_channel_and_about_half_the_bytes():
    f = features(1)
    fp16, int8 = f.to_bytes("fp16"), f.to_bytes("int8")
    assert len(int8) < 0.6 * len(fp16)
    arrays = unpack_tensors(int8)
    assert list(arrays) == list(FEATURE_NAMES)
    for name, array in f.arrays().items():
        scale = np.abs(array).max(axis=(1, 2), keepdims=True) / 127
        assert (np.abs(arrays[name] - array) <= scale / 2 + 1e-6).all()


def test_bad_blobs_are_refused():
    with pytest.raises(ValueError, match="bad magic"):
        unpack_tensors(b"\0" * 32)
    with pytest.raises(ValueError, match="Unknown embedding format"):
        pack_tensors({"x": np.zeros((1, 1, 1))}, "bf16")  # type: ignore[arg-type]


def test_the_browser_fixture_is_what_this_code_writes():
    """frontend/tests/sam2.test.ts reads these blobs; regenerate them when the layout changes
    (``PYTHONPATH=. python frontend/tests/fixtures/make_sam2_fixtures.py``)."""
    spec = importlib.util.spec_from_file_location("make", FIXTURES / "make_sam2_fixtures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stored = json.loads((FIXTURES / "sam2_fixtures.json").read_text())
    for fmt in ("fp16", "int8"):
        blob = base64.b64decode(stored["packed"][fmt]["blob"])
        assert blob == pack_tensors(module.sample_arrays(), fmt)
    assert stored == json.loads(json.dumps(module.fixtures()))


def test_predictors_can_be_built_from_many_threads_at_once():
    """A worker (or an eager web process) encodes images and segments everything for several
    requests at once; the predictor's scripted transforms once made every thread but one fail."""
    model = build_sam2_tiny()
    image = np.zeros((32, 32, 3), np.uint8)
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def build(segment_everything: bool) -> None:
        start.wait()
        try:
            if segment_everything:
                generate_sam2_masks(model, image, points_per_side=1)
            else:
                sam2_predictor(model)
        except Exception as exc:  # collected: the assertion below names every failure
            failures.append(exc)

    threads = [threading.Thread(target=build, args=(i % 2 == 0,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
