"""``manage.py sam_export_decoder --model NAME --out DIR``: ONNX decoders for the browser.

Writes one content-hashed ``.onnx`` file per variant and ``manifest.json`` into DIR.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from samapp.ml.onnx_export import DECODER_VARIANTS, export_decoders
from samapp.ml.registry import CheckpointNotFoundError, UnknownModelError, load_model
from samapp.ml.sam2_models import is_sam2
from samapp.ml.sam2_onnx import export_sam2_decoders


class Command(BaseCommand):
    help = "Export the prompt encoder + mask decoder of a model to ONNX (hashed file names)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default="sam_tiny", help="registry name")
        parser.add_argument("--out", type=Path, required=True, help="output directory")
        parser.add_argument(
            "--variants",
            nargs="+",
            choices=sorted(DECODER_VARIANTS),
            default=None,
            help="variants to export (default: all)",
        )
        parser.add_argument(
            "--random-init",
            action="store_true",
            help="export random weights (shape and parity checks only)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a directory")
        try:
            model = load_model(
                options["model"],
                checkpoint_dir=getattr(settings, "SAM_CHECKPOINT_DIR", None),
                random_init=options["random_init"],
            )
        except (UnknownModelError, CheckpointNotFoundError, RuntimeError) as error:
            raise CommandError(str(error)) from error
        if is_sam2(model):  # its own graph and variants (samapp.ml.sam2_onnx)
            manifest = export_sam2_decoders(model, options["model"], out)
        else:
            manifest = export_decoders(model, options["model"], out, options["variants"])
        for name, entry in manifest["variants"].items():
            self.stdout.write(f"{name}: {entry['filename']} ({entry['bytes']} bytes)")
        self.stdout.write(self.style.SUCCESS(f"wrote {out / 'manifest.json'}"))
