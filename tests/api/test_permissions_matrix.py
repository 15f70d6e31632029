"""The permission matrix, CVAT style: principal x endpoint x method -> expected status.

Each cell is its own test id, e.g. ``test_cell[label-detail PATCH-viewer]``. Principals are
the five project roles, a signed-in non-member (``outsider``) and an anonymous client.

Rules under test (DESIGN.md):
- anonymous: 401 or 403 everywhere;
- non-members: 404 on every project object, list views included; the project list answers
  but leaves the project out;
- viewers read only; annotators (and above) write annotations and work on image status;
  reviewers (and above) change review states and mark images reviewed; managers manage
  labels, images, invitations and assignments; only owners delete the project or grant the
  owner role (posting to the member list invites: 202, and nobody joins until they accept);
- a method a view does not offer is 405 for members (404 for non-members: nothing leaks);
- a refused request changes no row; an accepted write changes some.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from samapp.models import Annotation, Embedding, Image, Invitation, Label, Membership, Project
from tests.conftest import ROLES, png_bytes, rle_box

MEMBERS = frozenset(ROLES)
CAN: dict[str, frozenset[str]] = {
    "user": MEMBERS | {"outsider"},  # any signed-in user (the project list itself)
    "view": MEMBERS,
    "annotate": frozenset({"owner", "manager", "reviewer", "annotator"}),
    "review": frozenset({"owner", "manager", "reviewer"}),
    "manage": frozenset({"owner", "manager"}),
    "own": frozenset({"owner"}),
}
PRINCIPALS = (*ROLES, "outsider", "anonymous")
SUCCESS = {"GET": 200, "POST": 201, "PATCH": 200, "DELETE": 204}

Builder = Callable[[SimpleNamespace], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    name: str  # endpoint (and variant)
    method: str
    needs: str  # key of CAN
    build: Builder
    scoped: bool = True  # under /projects/<id>/: non-members get 404
    allowed: bool = True  # False: the view does not offer this method (405)
    success: int | None = None  # when not SUCCESS[method] (202: an invitation is sent)

    @property
    def id(self) -> str:
        return f"{self.name} {self.method}"


def _p(w: SimpleNamespace) -> str:
    return f"/api/projects/{w.project.id}/"


def url(path: Callable[[SimpleNamespace], str], **kwargs: Any) -> Builder:
    return lambda w: (path(w), dict(kwargs))


def json_body(path: Callable[[SimpleNamespace], str], body: Any, **extra: Any) -> Builder:
    def build(w: SimpleNamespace) -> tuple[str, dict[str, Any]]:
        data = body(w) if callable(body) else body
        return path(w), {"data": data, "format": "json", **extra}

    return build


def if_match(w: SimpleNamespace) -> dict[str, str]:
    return {"HTTP_IF_MATCH": f'"{w.annotation.version}"'}


def upload(w: SimpleNamespace) -> tuple[str, dict[str, Any]]:
    file = SimpleUploadedFile("new.png", png_bytes(5, 4, (1, 2, 3)), content_type="image/png")
    return _p(w) + "images/", {"data": {"file": [file]}, "format": "multipart"}


def annotation_write(body: Callable[[SimpleNamespace], dict[str, Any]]) -> Builder:
    def build(w: SimpleNamespace) -> tuple[str, dict[str, Any]]:
        return (
            _p(w) + f"annotations/{w.annotation.id}/",
            {"data": body(w), "format": "json", **if_match(w)},
        )

    return build


projects = lambda w: "/api/projects/"  # noqa: E731
project = _p
members = lambda w: _p(w) + "members/"  # noqa: E731
member = lambda w: _p(w) + f"members/{w.member.id}/"  # noqa: E731
labels = lambda w: _p(w) + "labels/"  # noqa: E731
label = lambda w: _p(w) + f"labels/{w.label.id}/"  # noqa: E731
images = lambda w: _p(w) + "images/"  # noqa: E731
image = lambda w: _p(w) + f"images/{w.image.id}/"  # noqa: E731
image_file = lambda w: _p(w) + f"images/{w.image.id}/file/"  # noqa: E731
image_annotations = lambda w: _p(w) + f"images/{w.image.id}/annotations/"  # noqa: E731
annotations = lambda w: _p(w) + "annotations/"  # noqa: E731
annotation = lambda w: _p(w) + f"annotations/{w.annotation.id}/"  # noqa: E731


def not_offered(name: str, path: Callable[[SimpleNamespace], str], *methods: str) -> list[Row]:
    scoped = path is not projects
    needs = "view" if scoped else "user"
    return [Row(name, m, needs, json_body(path, {}), scoped=scoped, allowed=False) for m in methods]


ROWS: list[Row] = [
    # project list
    Row("project-list", "GET", "user", url(projects), scoped=False),
    Row("project-list", "POST", "user", json_body(projects, {"name": "Mine"}), scoped=False),
    *not_offered("project-list", projects, "PATCH", "DELETE"),
    # project detail
    Row("project-detail", "GET", "view", url(project)),
    Row("project-detail", "PATCH", "manage", json_body(project, {"description": "new"})),
    Row("project-detail", "DELETE", "own", url(project)),
    *not_offered("project-detail", project, "POST"),
    # members
    Row("member-list", "GET", "view", url(members)),
    Row(
        "member-list",
        "POST",
        "manage",
        json_body(members, {"username": "newcomer", "role": "annotator"}),
        success=202,
    ),
    Row(
        "member-list grant-owner",
        "POST",
        "own",
        json_body(members, {"username": "newcomer", "role": "owner"}),
        success=202,
    ),
    *not_offered("member-list", members, "PATCH", "DELETE"),
    Row("member-detail", "GET", "view", url(member)),
    Row("member-detail", "PATCH", "manage", json_body(member, {"role": "reviewer"})),
    Row("member-detail grant-owner", "PATCH", "own", json_body(member, {"role": "owner"})),
    Row("member-detail", "DELETE", "manage", url(member)),
    *not_offered("member-detail", member, "POST"),
    # labels
    Row("label-list", "GET", "view", url(labels)),
    Row("label-list", "POST", "manage", json_body(labels, {"name": "bird", "color": "#123456"})),
    *not_offered("label-list", labels, "PATCH", "DELETE"),
    Row("label-detail", "GET", "view", url(label)),
    Row("label-detail", "PATCH", "manage", json_body(label, {"name": "kitten"})),
    # the world's annotation carries the label: its deletion says what becomes of it
    Row("label-detail", "DELETE", "manage", url(lambda w: label(w) + "?annotations=unlabel")),
    *not_offered("label-detail", label, "POST"),
    # images
    Row("image-list", "GET", "view", url(images)),
    Row("image-list", "POST", "manage", upload),
    *not_offered("image-list", images, "PATCH", "DELETE"),
    Row("image-detail", "GET", "view", url(image)),
    Row("image-detail status", "PATCH", "annotate", json_body(image, {"status": "in_progress"})),
    Row("image-detail reviewed", "PATCH", "review", json_body(image, {"status": "reviewed"})),
    Row(
        "image-detail assignee",
        "PATCH",
        "manage",
        json_body(image, lambda w: {"assignee": w.users["annotator"].id}),
    ),
    Row("image-detail", "DELETE", "manage", url(image)),
    *not_offered("image-detail", image, "POST"),
    Row("image-file", "GET", "view", url(image_file)),
    *not_offered("image-file", image_file, "POST", "PATCH", "DELETE"),
    # annotations
    Row("image-annotations", "GET", "view", url(image_annotations)),
    Row(
        "image-annotations",
        "POST",
        "annotate",
        json_body(
            image_annotations,
            lambda w: {"rle": rle_box(w.image.height, w.image.width, (0, 0, 2, 2))},
        ),
    ),
    *not_offered("image-annotations", image_annotations, "PATCH", "DELETE"),
    Row("annotation-list", "GET", "view", url(annotations)),
    *not_offered("annotation-list", annotations, "POST", "PATCH", "DELETE"),
    Row("annotation-detail", "GET", "view", url(annotation)),
    Row(
        "annotation-detail",
        "PATCH",
        "annotate",
        annotation_write(lambda w: {"label": w.other_label.id}),
    ),
    Row(
        "annotation-detail review",
        "PATCH",
        "review",
        annotation_write(lambda w: {"review_state": "rejected"}),
    ),
    Row(
        "annotation-detail",
        "DELETE",
        "annotate",
        lambda w: (annotation(w), if_match(w)),
    ),
    *not_offered("annotation-detail", annotation, "POST"),
]

CELLS = [
    pytest.param(row, principal, id=f"{row.id}-{principal}")
    for row in ROWS
    for principal in PRINCIPALS
]
MATRIX_SIZE = len(CELLS)  # 53 rows x 7 principals = 371


def expected_status(row: Row, principal: str) -> set[int]:
    if principal == "anonymous":
        return {401, 403}
    if principal == "outsider" and row.scoped:
        return {404}
    if not row.allowed:
        return {405}
    success = row.success or SUCCESS[row.method]
    return {success} if principal in CAN[row.needs] else {403}


def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Project, Membership, Invitation, Label, Image, Annotation, Embedding)
    }


@pytest.fixture
def world(
    users: dict[str, Any],
    project: Project,
    make_image: Callable[..., Image],
    make_annotation: Callable[..., Annotation],
    django_user_model: Any,
) -> SimpleNamespace:
    django_user_model.objects.create_user(username="newcomer", password="x")
    cat, dog = project.labels.order_by("id")
    image = make_image(project, width=8, height=6)
    return SimpleNamespace(
        users=users,
        project=project,
        image=image,
        label=cat,
        other_label=dog,
        annotation=make_annotation(image, label=cat),
        member=Membership.objects.get(project=project, user=users["extra"]),
    )


def test_matrix_is_complete() -> None:
    # every endpoint x GET/POST/PATCH/DELETE appears, and each cell is a test
    endpoints = {row.name.split()[0] for row in ROWS}
    for endpoint in endpoints:
        methods = {row.method for row in ROWS if row.name.split()[0] == endpoint}
        assert methods == set(SUCCESS), endpoint
    assert len(endpoints) == 12
    assert MATRIX_SIZE == len(ROWS) * len(PRINCIPALS) == 371


@pytest.mark.parametrize(("row", "principal"), CELLS)
def test_cell(
    row: Row, principal: str, world: SimpleNamespace, client_for: Callable[[str], Any]
) -> None:
    client = client_for(principal)
    path, kwargs = row.build(world)
    before = snapshot()

    response = getattr(client, row.method.lower())(path, **kwargs)

    expected = expected_status(row, principal)
    assert response.status_code in expected, (
        f"{row.id} as {principal}: {response.status_code} not in {expected}: "
        f"{getattr(response, 'data', b'')!r}"
    )
    after = snapshot()
    if response.status_code >= 400:
        assert after == before, f"a refused {row.id} changed rows"
        assert "detail" in response.json()
    elif row.method != "GET":
        assert after != before, f"an accepted {row.id} changed nothing"
    if row.name == "project-list" and row.method == "GET" and principal != "anonymous":
        ids = [p["id"] for p in response.json()["results"]]
        assert (world.project.id in ids) is (principal != "outsider")
