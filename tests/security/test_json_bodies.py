"""JSON request bodies: malformed, over-deep, oversized and ill-typed bodies get a 400 (or the
endpoint's own 4xx) on every endpoint, never a 500 or a debug page, in the embedded/test
profile and with the production settings. The JSON parser bounds a body to
SAM_MAX_JSON_BODY_BYTES bytes and SAM_MAX_JSON_DEPTH levels before any view sees it.

The fuzz test walks every operation of the OpenAPI schema that takes a body and sends
hypothesis-generated bodies (nesting from 1 to 50,000 levels, long strings, huge numbers,
wrong types for the operation's own fields, bytes that are not JSON) as the project owner,
so the project-scoped code runs, not only the 404 path."""

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from tests.annotations.test_api import bodies as field_bodies
from tests.security.profiles import fuzz_settings, profile

__all__ = ["profile"]

MAX_EXAMPLES = int(os.environ.get("SAM_FUZZ_EXAMPLES", "8"))
WRITE_METHODS = ("post", "put", "patch", "delete")


def nested(depth: int) -> str:
    """A JSON text of `depth` nested arrays and objects."""
    return '[{"a":' * (depth // 2) + "[]" + "}]" * (depth // 2)


@pytest.fixture
def no_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery sends are dropped: a valid fuzzed body must not train a model eagerly."""
    from celery.app.task import Task

    monkeypatch.setattr(Task, "apply_async", lambda self, *a, **k: None)


# ---------------------------------------------------------------- the token endpoint


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [40, 2_000, 50_000])
def test_anonymous_deep_json_to_the_token_endpoint_is_400(
    api_client: Any, depth: int, profile: dict[str, Any]
) -> None:
    body = nested(depth)
    started = time.perf_counter()
    response = api_client.post("/api/auth/token/", body, content_type="application/json", **profile)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.content[:300]
    assert "nested" in response.json()["detail"]
    assert b"Traceback" not in response.content
    print(f"{depth} levels ({len(body)} bytes): 400 in {elapsed * 1000:.1f} ms")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "JSON parse error"),
        ('{"username": NaN, "password": "x"}', "NaN"),
        ('{"username": ' + "9" * 5000 + ', "password": "x"}', "JSON parse error"),
        ("\udcff".encode("utf-8", "surrogatepass"), "JSON parse error"),
    ],
    ids=["truncated", "nan", "5000-digit-number", "not-utf8"],
)
def test_malformed_json_is_400(api_client: Any, body: Any, reason: str) -> None:
    response = api_client.post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert reason in response.json()["detail"]


@pytest.mark.django_db
def test_a_body_over_the_size_cap_is_400_before_parsing(
    client_for: Callable[[str], Any], project: Any
) -> None:
    """The body is not JSON past its first bytes: parsing it would give a different error."""
    with override_settings(SAM_MAX_JSON_BODY_BYTES=1000):
        response = client_for("owner").patch(
            f"/api/projects/{project.id}/",
            '{"description": "' + "x" * 2000,
            content_type="application/json",
        )
    assert response.status_code == 400
    assert "larger than 1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize(("debug", "expected"), [(None, "False"), ("1", "True")])
def test_the_embedded_profile_runs_without_debug(
    tmp_path: Any, debug: str | None, expected: str
) -> None:
    """In a process of its own: the embedded settings also set the process' umask."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backend.settings.local"}
    env["SAM_DATA_DIR"] = str(tmp_path)
    env.pop("DJANGO_DEBUG", None)
    if debug is not None:
        env["DJANGO_DEBUG"] = debug
    code = "from django.conf import settings; print(settings.DEBUG)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == expected


# ---------------------------------------------------------------- fuzz over every body


def _operations() -> list[tuple[str, str, list[str]]]:
    """(method, path, field names of its JSON body) for every operation with a body."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in WRITE_METHODS:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            reference = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            component = components.get(reference.rsplit("/", 1)[-1], {})
            found.append((method, path, sorted(component.get("properties", {}))))
    return found


OPERATIONS = _operations()

EXTREMES = ["x" * 100_000, "<script>", "\x00", "\ud7ff\uffff", 10**4000, 2**64, -1e308, []]


def bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    """Raw request bodies: the operation's own fields with any values (typed fuzz of
    tests/api) or extreme ones, deep nesting in and out of a field, and bytes that need not
    be JSON at all."""
    names = st.sampled_from(fields or ["x"])
    extreme = st.dictionaries(names, st.sampled_from(EXTREMES), min_size=1, max_size=3)
    as_json = (field_bodies(fields) | extreme).map(lambda v: json.dumps(v).encode())
    deep = st.sampled_from([33, 500, 3_000, 50_000]).map(lambda d: nested(d).encode())
    inside_field = st.tuples(names, st.integers(30, 5_000)).map(
        lambda pair: f'{{"{pair[0]}": {nested(pair[1])}}}'.encode()
    )
    return as_json | deep | inside_field | st.binary(max_size=64)


def test_the_fuzz_covers_every_body() -> None:
    assert len(OPERATIONS) >= 25, OPERATIONS
    assert any(
        path.endswith("/annotations/") and method == "post" for method, path, _ in OPERATIONS
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tasks")
@pytest.mark.parametrize(
    ("method", "path", "fields"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p, _ in OPERATIONS]
)
def test_no_body_gets_a_server_error(
    method: str,
    path: str,
    fields: list[str],
    profile: dict[str, Any],
    project: Any,
    make_image: Callable[..., Any],
    make_annotation: Callable[..., Any],
    client_for: Callable[[str], Any],
) -> None:
    image = make_image(project, width=16, height=12)
    annotation = make_annotation(image)
    known = {"project_id": project.id, "image_id": image.id, "annotation_id": annotation.id}
    url = re.sub(r"\{(\w+)\}", lambda m: str(known.get(m.group(1), 1)), path)
    client = client_for("owner")
    statuses: list[int] = []

    @given(body=bodies(fields))
    @fuzz_settings(MAX_EXAMPLES)
    def run(body: bytes) -> None:
        response = getattr(client, method)(url, body, content_type="application/json", **profile)
        statuses.append(response.status_code)
        assert response.status_code < 500, (body[:200], response.content[:300])
        assert b"Traceback" not in response.content

    run()
    print(f"{method.upper()} {path}: {len(statuses)} bodies, statuses {sorted(set(statuses))}")


# ---------------------------------------------------------------- websocket frames


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_memory_layer")
async def test_websocket_frames_that_are_not_bounded_json_get_an_error_event(
    connect: Callable[..., Any], project: Any
) -> None:
    from tests.fixtures import drain, receive_until

    connected, socket = await connect(project.id, "annotator")
    assert connected
    await receive_until(socket, "hello")
    await drain(socket)
    frames: list[dict[str, Any]] = [
        {"text_data": nested(50_000)},
        {"text_data": nested(40)},
        {"text_data": '{"action": "catch_up", "after": NaN}'},
        {"text_data": "{"},
        {"bytes_data": b'{"action": "presence"}'},
    ]
    for frame in frames:
        await socket.send_to(**frame)
        reply = await receive_until(socket, "error")
        assert reply["payload"]["detail"], frame
    # The socket is still open and answers.
    await socket.send_json_to({"action": "catch_up", "after": 0})
    await receive_until(socket, "caught_up")
    await socket.disconnect()
