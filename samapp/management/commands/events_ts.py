"""``manage.py events_ts [--check]``: write the websocket contract's TypeScript types.

Writes ``frontend/src/api/events.gen.ts`` from ``samapp/realtime/contract.py``; with
``--check`` it writes nothing and fails when the committed file differs."""

from pathlib import Path

from django.conf import settings

from samapp.management.generated import GeneratedFileCommand
from samapp.realtime.typescript import events_typescript


class Command(GeneratedFileCommand):
    help = "Generate the TypeScript websocket event types from samapp/realtime/contract.py."
    command_name = "events_ts"

    def default_output(self) -> Path:
        return Path(settings.BASE_DIR) / "frontend" / "src" / "api" / "events.gen.ts"

    def generate(self) -> str:
        return events_typescript()
