"""Cross-project access on every API route, enumerated from Django's URL resolver (a new route
is covered, or fails here until its ids are mapped): the owner of project A uses the ids of
project B's objects.

- B's project id (and B's object ids): 404 for every method; no row changes anywhere.
- A's project id with B's object ids: the same answer as for ids that exist nowhere (no
  oracle), 404 for reads; no row changes.
- A's routes with B's ids in the body (review, proposals, exports, assignees, labels...):
  never a 5xx, B's rows unchanged, no task queued with B's ids.
- No response ever contains B's names.
"""

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from samapp.models import Annotation, Image
from tests.conftest import rle_box
from tests.security.conftest import SECRET, table_snapshot

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NOWHERE = 999_999_999
# Routes without ids, or whose ids are not project objects: covered elsewhere (the user's own
# tokens: tests/security/test_tokens.py).
NO_FOREIGN_IDS = {
    "auth-token",
    "auth-logout",
    "auth-token-list",
    "me",
    "project-list",
    "schema",
    "api-docs",
    "invitation-list",
    # The server's registry models: one set for every user, no project's objects.
    "model-list",
    "model-detail",
    "model-download",
}
JOB_KINDS = {  # route name prefix -> the attribute of `foreign` a job_id names
    "segment-job": "segment_job",
    "export": "export",
    "training-job": "training_job",
}


def api_routes() -> list[tuple[str, list[str]]]:
    """(route name, its URL kwargs) of every named route under /api/."""
    found: list[tuple[str, list[str]]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith("api/") and entry.name:
                found.append((entry.name, list(entry.pattern.converters)))

    walk(get_resolver().url_patterns, "")
    unique = {(name, tuple(kwargs)) for name, kwargs in found}
    return [(name, list(kwargs)) for name, kwargs in sorted(unique)]


ROUTES = api_routes()
SCOPED = [(name, kwargs) for name, kwargs in ROUTES if name not in NO_FOREIGN_IDS]


# URL kwargs naming one of the foreign workspace's objects by id.
FOREIGN_OBJECTS = {
    "project_id": "project",
    "image_id": "image",
    "member_id": "member",
    "label_id": "label",
    "annotation_id": "annotation",
    "version_id": "version",
    "invitation_id": "invitation",
    "token_id": "token",
    "upload_id": "upload",
}


def _foreign_value(name: str, key: str, w: SimpleNamespace) -> Any:
    if key in FOREIGN_OBJECTS:
        return getattr(w, FOREIGN_OBJECTS[key]).id
    if key == "job_id":
        kind = next((v for k, v in JOB_KINDS.items() if name.startswith(k)), None)
        assert kind, f"map the job_id of route {name!r} in JOB_KINDS"
        return getattr(w, kind).id
    if key == "model_key":
        return w.version.model_key if "decoder" in name else "sam_tiny"
    if key == "sha256":
        return w.image.sha256
    if key == "filename":
        return "decoder.onnx"
    raise AssertionError(f"route {name!r}: map its URL kwarg {key!r} to a foreign object")


def foreign_kwargs(name: str, kwargs: list[str], w: SimpleNamespace, **override: Any) -> dict:
    return {key: override.get(key) or _foreign_value(name, key, w) for key in kwargs}


def hostile_body(w: SimpleNamespace) -> dict[str, Any]:
    """A body naming B's objects wherever an endpoint takes ids."""
    return {
        "name": "renamed",
        "description": "x",
        "label": w.label.id,
        "labels": [w.label.id],
        "image": w.image.id,
        "image_ids": [w.image.id],
        "images": [w.image.id],
        "ids": [w.annotation.id],
        "annotation_ids": [w.annotation.id],
        "review_state": "rejected",
        "status": "in_progress",
        "assignee": w.member.user_id,
        "username": w.member.user.username,
        "role": "viewer",
        "format": "coco",
        "options": {"labels": [w.label.id], "images": [w.image.id]},
        "rle": rle_box(6, 8, (0, 0, 2, 2)),
        "version": 1,
    }


def send(client: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"HTTP_IF_MATCH": '"1"'}
    if method in ("POST", "PUT", "PATCH"):
        kwargs.update(data=body, format="json")
    return getattr(client, method.lower())(path, **kwargs)


@pytest.fixture(autouse=True)
def queued_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record Celery sends instead of running them (the eager setting would train models)."""
    from celery.app.task import Task

    sent: list[tuple[str, Any]] = []

    def record(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        sent.append((self.name, (args, kwargs)))

    monkeypatch.setattr(Task, "apply_async", record)
    return sent


@pytest.fixture
def attacker(client_for: Any) -> Any:
    return client_for("owner")  # owner of project A, stranger to B


def test_routes_are_enumerated() -> None:
    names = {name for name, _ in SCOPED}
    assert len(SCOPED) >= 30, names
    assert {"image-file", "embedding-file", "export-download", "model-version-activate"} <= names


def _id(route: tuple[str, list[str]]) -> str:
    return route[0]


@pytest.mark.django_db
@pytest.mark.parametrize("route", SCOPED, ids=_id)
def test_foreign_ids_are_404_and_change_nothing(
    route: tuple[str, list[str]], foreign: SimpleNamespace, attacker: Any, queued_tasks: list
) -> None:
    name, kwargs = route
    path = reverse(name, kwargs=foreign_kwargs(name, kwargs, foreign))
    before = table_snapshot()
    statuses = {}
    for method in METHODS:
        response = send(attacker, method, path, hostile_body(foreign))
        statuses[method] = response.status_code
        assert SECRET.encode() not in response.content, (method, path)
    if "project_id" in kwargs:  # the membership check comes before any method dispatch
        assert set(statuses.values()) == {404}, (path, statuses)
    else:  # content-addressed routes: a method they lack is 405 whatever the ids
        assert statuses["GET"] == 404, statuses
        assert set(statuses.values()) <= {404, 405}, statuses
    assert table_snapshot() == before
    assert queued_tasks == []


OBJECT_ROUTES = [(name, kwargs) for name, kwargs in SCOPED if len(kwargs) > 1]


@pytest.mark.django_db
@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=_id)
def test_foreign_object_ids_in_own_project_answer_as_if_absent(
    route: tuple[str, list[str]],
    project: Any,
    foreign: SimpleNamespace,
    attacker: Any,
    queued_tasks: list,
) -> None:
    name, kwargs = route
    path = reverse(name, kwargs=foreign_kwargs(name, kwargs, foreign, project_id=project.id))
    absent = {
        key: uuid.UUID(int=NOWHERE) if key == "upload_id" else NOWHERE
        for key in kwargs
        if key.endswith("_id") and key != "project_id"
    }
    nowhere = reverse(
        name, kwargs=foreign_kwargs(name, kwargs, foreign, project_id=project.id, **absent)
    )
    before = table_snapshot()
    for method in METHODS:
        response = send(attacker, method, path, hostile_body(foreign))
        baseline = send(attacker, method, nowhere, hostile_body(foreign))
        assert SECRET.encode() not in response.content, (method, path)
        assert response.status_code == baseline.status_code, (method, path)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        if method == "GET":  # found (404) or, for POST-only routes, 405 as for any id
            assert response.status_code in (404, 405), path
    assert table_snapshot() == before
    assert queued_tasks == []


def _victim_rows(w: SimpleNamespace) -> dict[str, Any]:
    snapshot = table_snapshot()
    keep: dict[str, Any] = {}
    for label, rows in snapshot.items():
        keep[label] = [
            row
            for row in rows
            if row.get("project_id") == w.project.id
            or row.get("image_id") == w.image.id
            or (label == "samapp.Project" and row["id"] == w.project.id)
            or (label == "samapp.Embedding" and row["image_sha256"] == w.image.sha256)
        ]
    return keep


BODY_ROUTES = [(name, kwargs) for name, kwargs in SCOPED if kwargs == ["project_id"]]


@pytest.mark.django_db
@pytest.mark.parametrize("route", BODY_ROUTES, ids=_id)
def test_foreign_ids_in_bodies_of_own_routes(
    route: tuple[str, list[str]],
    project: Any,
    foreign: SimpleNamespace,
    attacker: Any,
    queued_tasks: list,
) -> None:
    name, _ = route
    path = reverse(name, kwargs={"project_id": project.id})
    before = _victim_rows(foreign)
    for method in ("POST", "PUT", "PATCH"):
        response = send(attacker, method, path, hostile_body(foreign))
        assert response.status_code < 500, (method, path, response.content[:300])
        assert SECRET.encode() not in response.content, (method, path)
    assert _victim_rows(foreign) == before
    # Nothing in A now points at B's objects, and no job was queued with B's ids.
    assert not Annotation.objects.filter(image__project=project, label=foreign.label).exists()
    assert not Image.objects.filter(project=project, assignee=foreign.member.user).exists()
    for task, (args, task_kwargs) in queued_tasks:
        text = repr((args, task_kwargs))
        assert f"[{foreign.image.id}]" not in text, (task, text)


@pytest.mark.django_db
def test_lists_never_show_foreign_rows(project: Any, foreign: SimpleNamespace, attacker) -> None:
    for name, kwargs in [*BODY_ROUTES, ("project-list", []), ("invitation-list", [])]:
        path = reverse(name, kwargs={"project_id": project.id} if kwargs else None)
        response = attacker.get(path)
        assert response.status_code in (200, 204, 405), (path, response.status_code)
        assert SECRET.encode() not in response.content, path
