"""Train the project's tiny SAM (or tiny SAM 2) on generated shapes; reproduces the committed
checkpoints.

``manage.py sam_train_tiny`` with no options retrains ``samapp/ml/weights/sam_tiny.pt``
(seed 0, a fixed number of steps) and rewrites ``sam_tiny.json`` with its held-out
metrics; ``--family sam2`` does the same for ``sam2_tiny.pt`` and ``sam2_tiny.json``.
``--minutes`` bounds the wall-clock time of this run: when it runs out, the training state
is saved beside the output and ``--resume`` continues from it.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from django.core.management.base import BaseCommand, CommandError, CommandParser

from samapp.ml.train_config import TrainConfig
from samapp.ml.training import TINY_MODELS, train_sam_tiny

TORCH_THREADS = 2


class Command(BaseCommand):
    help = (
        "Train sam_tiny or sam2_tiny on generated shapes (seeded, resumable) and write its metrics."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--family",
            choices=sorted(TINY_MODELS),
            default="sam",
            help="sam: sam_tiny (segment_anything); sam2: sam2_tiny (the sam2 package)",
        )
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="weights file to write (metrics go to the same name with .json); default: "
            "the family's bundled checkpoint",
        )
        parser.add_argument(
            "--minutes",
            type=float,
            default=30.0,
            help="wall-clock budget of this run; the state is saved when it runs out",
        )
        parser.add_argument("--seed", type=int, default=TrainConfig.seed)
        parser.add_argument(
            "--steps",
            type=int,
            default=None,
            help="optimisation steps of the whole schedule (default: the family's recipe)",
        )
        parser.add_argument(
            "--resume", action="store_true", help="continue from the saved training state"
        )
        parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
        parser.add_argument("--threads", type=int, default=TORCH_THREADS, help="torch CPU threads")

    def handle(self, *args: Any, **options: Any) -> None:
        tiny = TINY_MODELS[options["family"]]
        out: Path = (options["out"] or tiny.checkpoint).resolve()
        if options["minutes"] <= 0:
            raise CommandError(f"--minutes must be positive, got {options['minutes']}")
        steps = tiny.recipe.steps if options["steps"] is None else options["steps"]
        if steps <= 0:
            raise CommandError(f"--steps must be positive, got {steps}")
        if options["threads"] <= 0:
            raise CommandError(f"--threads must be positive, got {options['threads']}")
        if options["seed"] < 0:
            raise CommandError(f"--seed must be >= 0, got {options['seed']}")
        if out.suffix != ".pt":
            raise CommandError(f"--out must name a .pt file, got {out}")
        if out.exists() and out.is_dir():
            raise CommandError(f"--out {out} is a directory")
        try:
            device = torch.device(options["device"])
        except RuntimeError as error:
            raise CommandError(f"--device: {error}") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise CommandError("--device cuda: no CUDA device is available")
        out.parent.mkdir(parents=True, exist_ok=True)
        config = replace(tiny.recipe, seed=options["seed"], steps=steps)
        torch.set_num_threads(options["threads"])
        # The saturated tails of GELU and the focal loss's sigmoid underflow to denormals,
        # which x86 CPUs compute on a slow path; training loses nothing by flushing them.
        torch.set_flush_denormal(True)
        try:
            metrics = train_sam_tiny(
                out,
                config,
                resume=options["resume"],
                max_seconds=options["minutes"] * 60,
                device=str(device),
                family=options["family"],
            )
        except (FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from error
        if metrics is None:
            raise CommandError(
                f"stopped after {options['minutes']:g} minutes before the last step; "
                "the state is saved, continue with --resume"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {out} in {metrics['training_seconds']:.0f} s: "
                f"mIoU {metrics['miou_1_click']:.3f} (1 click), "
                f"{metrics['miou_3_clicks']:.3f} (3 clicks)"
            )
        )
