"""The browser's REST types (frontend/src/api/schema.gen.ts) are generated from the OpenAPI
schema by openapi-typescript: this fails when the committed file is stale."""

import shutil
from pathlib import Path

import pytest

from samapp.management.commands.api_ts import api_typescript, openapi_typescript_cli

GENERATED = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "schema.gen.ts"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed (openapi-typescript runs on it)"
)


@needs_node
@pytest.mark.django_db
def test_committed_rest_types_match_the_schema() -> None:
    if not openapi_typescript_cli().exists():
        pytest.fail("frontend/node_modules lacks openapi-typescript: run `npm install`")
    assert GENERATED.read_text(encoding="utf-8") == api_typescript(), (
        "frontend/src/api/schema.gen.ts is stale: run `python manage.py api_ts`"
    )
