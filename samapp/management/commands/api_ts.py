"""``manage.py api_ts [--check]``: TypeScript types of the REST API from its OpenAPI schema.

Writes the schema (drf-spectacular, as ``manage.py spectacular`` does) to a temporary file and
runs openapi-typescript (``frontend/node_modules``) on it into
``frontend/src/api/schema.gen.ts``; with ``--check`` it writes nothing and fails when the
committed file differs. Needs node and ``npm install`` in ``frontend/``."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from samapp.management.generated import GeneratedFileCommand


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


class Command(GeneratedFileCommand):
    help = "Generate frontend/src/api/schema.gen.ts from the OpenAPI schema (openapi-typescript)."
    command_name = "api_ts"

    def default_output(self) -> Path:
        return frontend_dir() / "src" / "api" / "schema.gen.ts"

    def generate(self) -> str:
        return api_typescript()
