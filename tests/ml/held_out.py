"""The committed tiny checkpoints' held-out evaluation, as their metrics files were measured."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from samapp.ml.evaluation import HELD_OUT_SEED, InteractiveResult, evaluate_interactive
from samapp.ml.registry import AnySam
from samapp.ml.synthetic import generate_objects

OBJECTS = 200


def held_out_result(model: AnySam, clicks: int = 3) -> Iterator[InteractiveResult]:
    """Yield (for a module fixture) ``model``'s interactive result on the ``OBJECTS``
    held-out objects, evaluated with one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scenes = generate_objects(HELD_OUT_SEED, OBJECTS)
        yield evaluate_interactive(
            model, [s.image for s in scenes], [s.masks for s in scenes], clicks=clicks
        )
    finally:
        torch.set_num_threads(threads)


def assert_metrics_match(metrics: dict[str, Any], result: InteractiveResult, model: AnySam) -> None:
    """The metrics file's held-out figures are ``result``'s (centre clicks) and, for a first
    click anywhere in the object, ``model``'s re-evaluated now."""
    assert metrics["held_out_seed"] == HELD_OUT_SEED
    assert metrics["miou_1_click"] == pytest.approx(result.miou(1), abs=0.01)
    assert metrics["miou_3_clicks"] == pytest.approx(result.miou(3), abs=0.01)
    scenes = generate_objects(HELD_OUT_SEED, OBJECTS)
    anywhere = evaluate_interactive(
        model,
        [s.image for s in scenes],
        [s.masks for s in scenes],
        clicks=1,
        first_click_rng=np.random.default_rng(HELD_OUT_SEED),
    )
    assert metrics["miou_1_click_anywhere"] == pytest.approx(anywhere.miou(1), abs=0.01)
