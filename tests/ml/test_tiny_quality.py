"""The committed sam_tiny checkpoint: size, metadata, and interactive quality on a
held-out generated set (a seed never used for training). Nothing is retrained here."""

import json

import pytest
import torch

from samapp.ml.evaluation import HELD_OUT_SEED, evaluate_interactive
from samapp.ml.synthetic import generate_objects
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, build_sam_tiny
from samapp.ml.training import TrainConfig

OBJECTS = 200


@pytest.fixture(scope="module")
def result():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sam = build_sam_tiny(SAM_TINY_CHECKPOINT)
        scenes = generate_objects(HELD_OUT_SEED, OBJECTS)
        yield evaluate_interactive(
            sam, [s.image for s in scenes], [s.masks for s in scenes], clicks=3
        )
    finally:
        torch.set_num_threads(threads)


def test_checkpoint_is_small_state_dict():
    assert SAM_TINY_CHECKPOINT.stat().st_size < 10 * 2**20
    state = torch.load(SAM_TINY_CHECKPOINT, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_metrics_file_describes_the_checkpoint(result):
    metrics = json.loads(SAM_TINY_CHECKPOINT.with_suffix(".json").read_text())
    assert metrics["seed"] == TrainConfig().seed
    assert metrics["train_config"]["steps"] == TrainConfig().steps
    assert metrics["held_out_seed"] == HELD_OUT_SEED
    # 30 minutes on 2 cores is at most 3600 CPU seconds (wall time depends on machine load)
    assert metrics["training_cpu_seconds"] <= 2 * 30 * 60
    assert metrics["miou_1_click"] == pytest.approx(result.miou(1), abs=0.01)
    assert metrics["miou_3_clicks"] == pytest.approx(result.miou(3), abs=0.01)


def test_held_out_set_is_not_the_training_stream():
    assert TrainConfig().seed != HELD_OUT_SEED


def test_one_click_miou(result):
    assert result.ious.shape == (OBJECTS, 3)
    assert result.miou(1) >= 0.85


def test_three_clicks_miou(result):
    assert result.miou(3) >= 0.92
