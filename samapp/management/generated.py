"""A management command that writes one generated file, or with ``--check`` fails when the
committed file differs from what it would write."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class GeneratedFileCommand(BaseCommand):
    """Subclasses say where the file goes, what it holds, and which command remakes it."""

    command_name = ""

    def default_output(self) -> Path:
        raise NotImplementedError

    def generate(self) -> str:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="file to write")
        parser.add_argument(
            "--check", action="store_true", help="fail if the file is not up to date"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["output"] or self.default_output()
        text = self.generate()
        if options["check"]:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                raise CommandError(f"{path} is stale: run `python manage.py {self.command_name}`.")
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {path}")
