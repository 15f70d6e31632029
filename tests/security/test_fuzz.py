"""API fuzzing: schemathesis generates requests from our OpenAPI schema (/api/schema/),
MAX_EXAMPLES per operation, sent as the project owner (so the project-scoped code runs,
not only the 404 path) through the WSGI app. No request may get a 5xx. Celery sends are
recorded instead of run (the eager test setting would train models)."""

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from backend.wsgi import application

MAX_EXAMPLES = int(os.environ.get("SAM_FUZZ_EXAMPLES", "5"))
# Upload chunks are raw bytes under the resumable-upload media type: fuzz them as such.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = [
    (result.ok().method.upper(), result.ok().path) for result in SCHEMA.get_all_operations()
]


def test_the_schema_lists_the_api() -> None:
    assert len(OPERATIONS) >= 40, OPERATIONS


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch: pytest.MonkeyPatch) -> Any:
    from celery.app.task import Task
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    monkeypatch.setattr(Task, "apply_async", lambda self, *a, **k: None)
    # As Django's test client does: the WSGI handler must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(
    method: str, path: str, project: Any, make_image: Any, make_annotation: Any, token_for: Any
) -> None:
    image = make_image(project, width=16, height=12)
    annotation = make_annotation(image)
    known = {"project_id": project.id, "image_id": image.id, "annotation_id": annotation.id}
    headers = {"Authorization": f"Token {token_for('owner')}"}
    operation = SCHEMA[path][method]
    failures: list[str] = []
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        for key, value in known.items():
            if case.path_parameters and key in case.path_parameters:
                case.path_parameters[key] = value
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{response.status_code}: {case.as_curl_command()}")

    run()
    assert statuses, "no request was sent"
    assert failures == [], failures[:3]
    print(f"{method} {path}: {len(statuses)} requests, statuses {sorted(set(statuses))}")
