"""Sizes of what a member writes: annotation `prompts` follow a schema (at most 256 points,
one label per point, a box, the annotation whose mask was the mask input; nothing else), and
free text has a cap (descriptions, names, labels given with a new project). 9 MiB of prompts
were accepted, stored, logged again in the event log and sent to every member opening the
image."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import rle_box

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_annotation(
    client_for: Callable[[str], Any], project: Any, make_image: Callable[..., Any]
) -> Callable[[Any], Any]:
    image = make_image(project, width=16, height=12)
    url = f"/api/projects/{project.id}/images/{image.id}/annotations/"

    def post(prompts: Any) -> Any:
        body = {"rle": rle_box(12, 16, (1, 1, 5, 5)), "source": "click", "prompts": prompts}
        return client_for("annotator").post(url, body, format="json")

    return post


def test_9mib_of_prompts_is_refused(post_annotation: Callable[[Any], Any]) -> None:
    from samapp.models import Annotation, AnnotationEvent

    prompts = {"points": [[1.5, 2.5]] * 640_000, "labels": [1] * 640_000}
    assert len(json.dumps(prompts)) > 9 * 2**20
    response = post_annotation(prompts)
    assert response.status_code == 400
    assert "points" in response.json()["errors"]["prompts"]
    assert Annotation.objects.count() == 0
    assert AnnotationEvent.objects.count() == 0


@pytest.mark.parametrize(
    "prompts",
    [
        {"points": [[1, 1]], "labels": [1], "junk": "x" * 1000},
        {"points": [[1, 1]] * 257, "labels": [1] * 257},
        {"points": [[1, 1], [2, 2]], "labels": [1]},
        {"points": [[1, 1, 1]], "labels": [1]},
        {"points": [["a", 1]], "labels": [1]},
        {"points": [[1e9, 1]], "labels": [1]},
        {"points": [[1, 1]], "labels": [7]},
        {"box": [1, 2, 3]},
        {"box": {"x": 1}},
        {"mask": "annotation-3"},
        ["points"],
        "points",
    ],
    ids=[
        "unknown-key",
        "257-points",
        "labels-mismatch",
        "three-coordinates",
        "text-coordinate",
        "far-coordinate",
        "label-7",
        "short-box",
        "box-object",
        "mask-not-an-id",
        "a-list",
        "a-string",
    ],
)
def test_prompts_outside_the_schema_are_400(
    post_annotation: Callable[[Any], Any], prompts: Any
) -> None:
    response = post_annotation(prompts)
    assert response.status_code == 400, response.content[:300]
    assert "prompts" in response.json()["errors"]


@pytest.mark.parametrize(
    "prompts",
    [
        {},
        {"points": [[2, 2]], "labels": [1]},
        {"points": [[0.5, 11.5]] * 256, "labels": [0, 1] * 128, "box": None},
        {"points": [], "labels": [], "box": [1, 2, 10.5, 8], "mask": 3},
    ],
    ids=["empty", "one-click", "256-points", "box-and-mask"],
)
def test_prompts_the_workspace_sends_are_kept(
    post_annotation: Callable[[Any], Any], prompts: Any
) -> None:
    response = post_annotation(prompts)
    assert response.status_code == 201, response.content[:300]
    assert response.json()["prompts"] == prompts


def test_descriptions_and_names_are_capped(client_for: Callable[[str], Any], project: Any) -> None:
    from samapp.models import Label, Project

    owner = client_for("owner")
    long_description = "x" * 10_001
    created = owner.post(
        "/api/projects/", {"name": "a", "description": long_description}, format="json"
    )
    assert created.status_code == 400
    assert "description" in created.json()["errors"]
    patched = owner.patch(
        f"/api/projects/{project.id}/", {"description": long_description}, format="json"
    )
    assert patched.status_code == 400
    assert "description" in patched.json()["errors"]
    for labels in (
        [{"name": "n" * 101}],
        [{"name": "cat", "color": "#" + "f" * 1000}],
        [{"name": f"l{i}"} for i in range(501)],
    ):
        response = owner.post("/api/projects/", {"name": "b", "labels": labels}, format="json")
        assert response.status_code == 400, (labels[:1], response.content[:200])
    assert Project.objects.filter(name__in=["a", "b"]).count() == 0
    assert not Label.objects.filter(name__startswith="nnnn").exists()
    ok = owner.post(
        "/api/projects/",
        {
            "name": "c",
            "description": "x" * 10_000,
            "labels": [{"name": "cat"}, {"name": "dog", "color": "#00ff00"}],
        },
        format="json",
    )
    assert ok.status_code == 201, ok.content[:300]
    assert [(label["name"], label["color"]) for label in ok.json()["labels"]] == [
        ("cat", "#ff0000"),
        ("dog", "#00ff00"),
    ]
