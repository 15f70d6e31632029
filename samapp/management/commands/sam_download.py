"""``manage.py sam_download NAME [NAME ...]``: fetch official checkpoints into SAM_CHECKPOINT_DIR.

Shows a progress bar, resumes a partial download, verifies the sha256 (a corrupt file is
deleted) and fails with a one-line message when offline.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from samapp.ml.checkpoints import CheckpointDownloadError, download_model
from samapp.ml.registry import MODELS, UnknownModelError


class Command(BaseCommand):
    help = "Download official SAM checkpoints (with resume and sha256 check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME", help=f"one of {sorted(MODELS)}")
        parser.add_argument(
            "--dir",
            type=Path,
            default=None,
            help="checkpoint directory (default: settings.SAM_CHECKPOINT_DIR)",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["dir"] or getattr(settings, "SAM_CHECKPOINT_DIR", None)
        for name in options["names"]:
            try:
                path = download_model(
                    name,
                    checkpoint_dir=directory,
                    progress=not options["no_progress"],
                    progress_file=self.stderr,
                )
            except (UnknownModelError, CheckpointDownloadError, OSError) as error:
                raise CommandError(str(error)) from error
            self.stdout.write(self.style.SUCCESS(f"{name}: {path}"))
