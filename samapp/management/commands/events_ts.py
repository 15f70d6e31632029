"""``manage.py events_ts [--check]``: write the websocket contract's TypeScript types.

Writes ``frontend/src/api/events.gen.ts`` from ``samapp/realtime/contract.py``; with
``--check`` it writes nothing and fails when the committed file differs."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from samapp.realtime.typescript import events_typescript


def default_output() -> Path:
    return Path(settings.BASE_DIR) / "frontend" / "src" / "api" / "events.gen.ts"


class Command(BaseCommand):
    help = "Generate the TypeScript websocket event types from samapp/realtime/contract.py."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="file to write")
        parser.add_argument(
            "--check", action="store_true", help="fail if the file is not up to date"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["output"] or default_output()
        text = events_typescript()
        if options["check"]:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                raise CommandError(f"{path} is stale: run `python manage.py events_ts`.")
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {path}")
