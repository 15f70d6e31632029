"""The committed tiny checkpoints' held-out evaluation, as their metrics files were measured."""

from collections.abc import Iterator

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
