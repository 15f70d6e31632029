"""``manage.py api_ts [--check]``: TypeScript types of the REST API from its OpenAPI schema.

Writes the schema (drf-spectacular, as ``manage.py spectacular`` does) to a temporary file and
runs openapi-typescript (``frontend/node_modules``) on it into
``frontend/src/api/schema.gen.ts``; with ``--check`` it writes nothing and fails when the
committed file differs. Needs node and ``npm install`` in ``frontend/``."""

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


def frontend_dir() -> Path:
    return Path(settings.BASE_DIR) / "frontend"


def openapi_typescript_cli() -> Path:
    return frontend_dir() / "node_modules" / "openapi-typescript" / "bin" / "cli.js"


def api_typescript() -> str:
    """The generated TypeScript for the current schema."""
    node = shutil.which("node")
    cli = openapi_typescript_cli()
    if node is None:
        raise CommandError("node is not installed: openapi-typescript needs it.")
    if not cli.exists():
        raise CommandError(f"{cli} is missing: run `npm install` in frontend/.")
    with tempfile.TemporaryDirectory() as directory:
        schema = Path(directory) / "openapi.yml"
        output = Path(directory) / "schema.gen.ts"
        call_command("spectacular", "--file", str(schema), "--validate")
        run = subprocess.run(  # noqa: S603 (node and the CLI path are ours, not input)
            [node, str(cli), str(schema), "--output", str(output)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            raise CommandError(f"openapi-typescript failed: {run.stderr.strip()[-2000:]}")
        return output.read_text(encoding="utf-8")


class Command(BaseCommand):
    help = "Generate frontend/src/api/schema.gen.ts from the OpenAPI schema (openapi-typescript)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="file to write")
        parser.add_argument(
            "--check", action="store_true", help="fail if the file is not up to date"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["output"] or frontend_dir() / "src" / "api" / "schema.gen.ts"
        text = api_typescript()
        if options["check"]:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                raise CommandError(f"{path} is stale: run `python manage.py api_ts`.")
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {path}")
