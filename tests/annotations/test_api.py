"""Annotations over REST: CRUD, optimistic concurrency (If-Match / version), validation, and
never a 500 on bad input."""

import json
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samapp.models import Annotation
from tests.conftest import rle_box


@pytest.fixture
def image(project, make_image) -> Any:
    return make_image(project, width=8, height=6)


@pytest.fixture
def annotator(client_for) -> Any:
    return client_for("annotator")


def list_url(image: Any) -> str:
    return f"/api/projects/{image.project_id}/images/{image.id}/annotations/"


def detail_url(annotation_id: int, project_id: int) -> str:
    return f"/api/projects/{project_id}/annotations/{annotation_id}/"


def create(client: Any, image: Any, **body: Any) -> Any:
    body.setdefault("rle", rle_box(image.height, image.width, (1, 1, 4, 3)))
    return client.post(list_url(image), body, format="json")


# ---------------------------------------------------------------- CRUD


def test_create_derives_bbox_and_area_and_sets_provenance(annotator, image, users, project) -> None:
    cat = project.labels.get(name="cat")
    response = create(
        annotator,
        image,
        label=cat.id,
        source="click",
        predicted_iou=0.93,
        prompts={"points": [[2, 2]], "labels": [1]},
        model_key="sam_tiny",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["ETag"] == '"1"'
    assert body["version"] == 1
    assert body["bbox"] == [1.0, 1.0, 3.0, 2.0]
    assert body["area"] == 6
    assert body["rle"]["size"] == [6, 8]
    assert (body["label"], body["source"], body["model_key"]) == (cat.id, "click", "sam_tiny")
    assert body["author"] == users["annotator"].id
    # the project reviews annotators' work (the default policy): it waits for a reviewer
    assert body["review_state"] == "proposed"
    assert body["prompts"] == {"points": [[2, 2]], "labels": [1]}
    assert Annotation.objects.get(pk=body["id"]).area == 6
    image.refresh_from_db()
    assert image.status == "in_progress"  # the first annotation starts the image


def test_the_schema_describes_every_key_of_the_payload(annotator, image) -> None:
    from samapp.api.annotations import AnnotationOutput

    body = create(annotator, image).json()
    assert set(AnnotationOutput().fields) == set(body)


def test_create_accepts_uncompressed_rle(annotator, image) -> None:
    response = create(annotator, image, rle={"size": [6, 8], "counts": [0, 48]})
    assert response.status_code == 201, response.json()
    assert response.json()["area"] == 48
    assert isinstance(response.json()["rle"]["counts"], str)


def test_read_list_and_filter(client_for, project, make_image, make_annotation) -> None:
    first, second = make_image(project), make_image(project)
    a = make_annotation(first)
    b = make_annotation(second)
    c = make_annotation(second, box=(0, 0, 1, 1))
    viewer = client_for("viewer")
    base = f"/api/projects/{project.id}/annotations/"
    assert [x["id"] for x in viewer.get(base).json()["results"]] == [a.id, b.id, c.id]
    assert [x["id"] for x in viewer.get(base, {"image": second.id}).json()["results"]] == [
        b.id,
        c.id,
    ]
    assert viewer.get(base, {"image": "two"}).status_code == 400
    per_image = viewer.get(list_url(second), {"page_size": 1}).json()
    assert per_image["count"] == 2
    assert len(per_image["results"]) == 1
    detail = viewer.get(detail_url(a.id, project.id))
    assert detail.status_code == 200
    assert detail["ETag"] == '"1"'
    assert detail.json()["bbox"] == [1.0, 1.0, 3.0, 2.0]


def test_update_with_if_match_bumps_the_version(annotator, image, project) -> None:
    created = create(annotator, image).json()
    dog = project.labels.get(name="dog")
    url = detail_url(created["id"], project.id)
    response = annotator.patch(
        url,
        {"label": dog.id, "rle": rle_box(6, 8, (0, 0, 8, 6))},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 200, response.json()
    assert response["ETag"] == '"2"'
    assert (response.json()["version"], response.json()["label"]) == (2, dog.id)
    assert (response.json()["area"], response.json()["bbox"]) == (48, [0.0, 0.0, 8.0, 6.0])
    # a weak ETag and the body's version are accepted too
    response = annotator.patch(
        url, {"prompts": {"points": [[1, 1]], "labels": [1]}}, format="json", HTTP_IF_MATCH='W/"2"'
    )
    assert response.json()["version"] == 3
    response = annotator.patch(
        url, {"prompts": {"points": [[2, 2]], "labels": [1]}, "version": 3}, format="json"
    )
    assert response.json()["version"] == 4
    assert Annotation.objects.get(pk=created["id"]).version == 4


def test_stale_write_is_412_with_the_current_version(annotator, client_for, image, project) -> None:
    created = create(annotator, image).json()
    url = detail_url(created["id"], project.id)
    mine = annotator.patch(
        url, {"prompts": {"points": [[1, 1]], "labels": [1]}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert mine.status_code == 200
    theirs = client_for("reviewer").patch(
        url, {"prompts": {"points": [[5, 5]], "labels": [0]}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert theirs.status_code == 412
    body = theirs.json()
    assert body["current"]["version"] == 2
    assert body["current"]["prompts"] == {"points": [[1, 1]], "labels": [1]}
    assert "stale" in body["detail"]
    # nothing silently overwritten
    assert Annotation.objects.get(pk=created["id"]).prompts == {"points": [[1, 1]], "labels": [1]}
    # a stale delete is refused the same way
    stale_delete = annotator.delete(url, HTTP_IF_MATCH='"1"')
    assert stale_delete.status_code == 412
    assert stale_delete.json()["current"]["version"] == 2
    assert Annotation.objects.filter(pk=created["id"]).exists()


def test_write_without_a_version_is_428(annotator, image, project) -> None:
    created = create(annotator, image).json()
    url = detail_url(created["id"], project.id)
    response = annotator.patch(url, {"model_key": "x"}, format="json")
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert annotator.delete(url).status_code == 428
    assert Annotation.objects.get(pk=created["id"]).version == 1


def test_malformed_if_match_is_400(annotator, image, project) -> None:
    created = create(annotator, image).json()
    url = detail_url(created["id"], project.id)
    for header in ("*", '"abc"', "1, 2"):
        response = annotator.patch(url, {"model_key": "x"}, format="json", HTTP_IF_MATCH=header)
        assert response.status_code == 400, header


def test_delete_with_the_right_version(annotator, image, project) -> None:
    created = create(annotator, image).json()
    url = detail_url(created["id"], project.id)
    assert annotator.delete(url, HTTP_IF_MATCH='"1"').status_code == 204
    assert not Annotation.objects.filter(pk=created["id"]).exists()
    assert annotator.get(url).status_code == 404


def test_review_state_needs_the_review_capability(client_for, annotator, image, project) -> None:
    created = create(annotator, image).json()
    url = detail_url(created["id"], project.id)
    refused = annotator.patch(url, {"review_state": "rejected"}, format="json", HTTP_IF_MATCH='"1"')
    assert refused.status_code == 403
    reviewed = client_for("reviewer").patch(
        url, {"review_state": "rejected"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert reviewed.status_code == 200
    assert reviewed.json()["review_state"] == "rejected"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [6, 8], "counts": [1, 2]},  # does not add up to 48
        {"size": [6, 8], "counts": "\x7f\x7f"},  # not RLE characters
        {"size": [6, 8], "counts": [48, -1, 1]},  # negative run
        {"size": [6, 8]},  # no counts
        {"size": [6, 8], "counts": 48},
        {"size": [-6, 8], "counts": [0]},
        {"size": [6], "counts": []},
        {"size": [6, 8], "counts": [48], "extra": 1},
        {"size": [5, 8], "counts": [40]},  # a valid mask of the wrong size for this image
    ],
    ids=[
        "sum",
        "chars",
        "negative",
        "no-counts",
        "int-counts",
        "negative-size",
        "short-size",
        "extra-key",
        "wrong-size",
    ],
)
def test_bad_rle_is_400(annotator, image, rle) -> None:
    response = create(annotator, image, rle=rle)
    assert response.status_code == 400, response.json()
    assert response.json()["detail"]
    assert Annotation.objects.count() == 0


def test_rle_must_be_an_object(annotator, image) -> None:
    response = annotator.post(list_url(image), {"rle": "abc"}, format="json")
    assert response.status_code == 400
    assert "rle" in response.json()["errors"]


def test_label_from_another_project_is_400(annotator, image, other_project, project) -> None:
    foreign = other_project.labels.get()
    response = create(annotator, image, label=foreign.id)
    assert response.status_code == 400
    assert "label" in response.json()["detail"].lower()
    created = create(annotator, image).json()
    response = annotator.patch(
        detail_url(created["id"], project.id),
        {"label": foreign.id},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 400
    assert Annotation.objects.get(pk=created["id"]).version == 1


def test_annotation_of_another_project_is_404(
    client_for, other_project, make_image, make_annotation, project
) -> None:
    foreign = make_annotation(make_image(other_project))
    client = client_for("owner")
    assert client.get(detail_url(foreign.id, project.id)).status_code == 404
    response = client.patch(
        detail_url(foreign.id, project.id), {"model_key": "x"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 404
    assert Annotation.objects.get(pk=foreign.id).model_key == ""


# ---------------------------------------------------------------- concurrency over HTTP


@pytest.mark.django_db(transaction=True)
def test_concurrent_http_writers_on_one_version(
    project, image, make_annotation, client_for
) -> None:
    """Ten clients read version 1 and PATCH with If-Match "1" at once: exactly one wins, the
    others get 412 with the winner's version. (Same rule as the service-level stress test.)"""
    annotation = make_annotation(image)
    # every writer may edit it: its author (annotator) and the roles that review
    clients = [client_for(role) for role in ("owner", "manager", "annotator", "reviewer") * 2]
    barrier = threading.Barrier(len(clients))
    results: list[int] = []
    lock = threading.Lock()

    def write(index: int, client: Any) -> None:
        from django.db import connection

        try:
            barrier.wait()
            response = client.patch(
                detail_url(annotation.id, project.id),
                {"prompts": {"points": [[index, 0]], "labels": [1]}},
                format="json",
                HTTP_IF_MATCH='"1"',
            )
            with lock:
                results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [200] + [412] * (len(clients) - 1)
    annotation.refresh_from_db()
    assert annotation.version == 2


# ---------------------------------------------------------------- bad input never 500

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def bodies(fields: list[str]) -> st.SearchStrategy[Any]:
    """Objects that use the endpoint's own field names (so validation goes deep), plus any
    JSON at all."""
    known = st.fixed_dictionaries({}, optional={name: json_values for name in fields})
    return known | json_values


ENDPOINTS: dict[str, tuple[str, Any, list[str]]] = {
    "project-create": (
        "post",
        lambda w: "/api/projects/",
        ["name", "description", "default_model_key", "labels", "review_policy"],
    ),
    "project-update": (
        "patch",
        lambda w: f"/api/projects/{w['project'].id}/",
        ["name", "description", "default_model_key", "settings", "review_policy"],
    ),
    "member-create": (
        "post",
        lambda w: f"/api/projects/{w['project'].id}/members/",
        ["username", "role"],
    ),
    "member-update": (
        "patch",
        lambda w: f"/api/projects/{w['project'].id}/members/{w['member'].id}/",
        ["role"],
    ),
    "label-create": (
        "post",
        lambda w: f"/api/projects/{w['project'].id}/labels/",
        ["name", "color"],
    ),
    "label-update": (
        "patch",
        lambda w: f"/api/projects/{w['project'].id}/labels/{w['label'].id}/",
        ["name", "color"],
    ),
    "image-update": (
        "patch",
        lambda w: f"/api/projects/{w['project'].id}/images/{w['image'].id}/",
        ["status", "assignee"],
    ),
    "annotation-create": (
        "post",
        lambda w: list_url(w["image"]),
        [
            "label",
            "rle",
            "predicted_iou",
            "source",
            "prompts",
            "model_key",
            "review_state",
            "review_reason",
            "version",
        ],
    ),
    "annotation-update": (
        "patch",
        lambda w: detail_url(w["annotation"].id, w["project"].id),
        [
            "label",
            "rle",
            "predicted_iou",
            "source",
            "prompts",
            "model_key",
            "review_state",
            "review_reason",
            "version",
        ],
    ),
    "annotation-delete": (
        "delete",
        lambda w: detail_url(w["annotation"].id, w["project"].id),
        ["version"],
    ),
    "image-assign": (
        "post",
        lambda w: f"/api/projects/{w['project'].id}/images/assign/",
        ["images", "assignee"],
    ),
    "token": ("post", lambda w: "/api/auth/token/", ["username", "password"]),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_random_json_never_500(
    endpoint, project, image, make_annotation, client_for, users
) -> None:
    from samapp.models import Membership

    method, path, fields = ENDPOINTS[endpoint]
    world = {
        "project": project,
        "image": image,
        "label": project.labels.first(),
        "member": Membership.objects.get(project=project, user=users["extra"]),
        "annotation": make_annotation(image),
    }
    owner = client_for("owner")
    url = path(world)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(
        body=bodies(fields),
        if_match=st.none()
        | st.text(max_size=6)
        | st.integers(-(2**70), 2**70).map(lambda n: f'"{n}"'),
    )
    def check(body: Any, if_match: str | None) -> None:
        headers = {"HTTP_IF_MATCH": if_match} if if_match else {}
        try:
            response = getattr(owner, method)(
                url, json.dumps(body), content_type="application/json", **headers
            )
        except ValueError:  # the test client itself refuses some header values
            return
        assert response.status_code < 500, (body, response.content[:300])

    check()


HUGE = 99_999_999_999_999_999_999_999


def test_out_of_range_numbers_are_client_errors(client_for, project, make_image, make_annotation):
    """Integers no database column holds are refused as 400/404, never passed to the driver."""
    image = make_image(project)
    annotation = make_annotation(image)
    client = client_for("owner")
    base = f"/api/projects/{project.id}/"
    url = detail_url(annotation.id, project.id)
    rle = {"size": [image.height, image.width], "counts": [image.height * image.width]}
    cases = [
        client.patch(url, {"model_key": "x"}, format="json", HTTP_IF_MATCH=f'"{HUGE}"'),
        client.patch(url, {"model_key": "x", "version": HUGE}, format="json"),
        client.delete(url, json.dumps({"version": HUGE}), content_type="application/json"),
        client.delete(url, json.dumps({"version": "x"}), content_type="application/json"),
        client.delete(url, json.dumps({"version": True}), content_type="application/json"),
        client.get(base + "images/", {"assignee": HUGE}),
        client.get(base + "images/", {"label": HUGE}),
        client.get(base + "annotations/", {"image": HUGE}),
        client.patch(base + f"images/{image.id}/", {"assignee": HUGE}, format="json"),
        client.post(list_url(image), {"rle": rle, "label": HUGE}, format="json"),
    ]
    assert [r.status_code for r in cases] == [400] * len(cases)
    for path in (
        f"/api/projects/{HUGE}/",
        f"{base}images/{HUGE}/",
        f"{base}images/{HUGE}/file/",
        f"{base}annotations/{HUGE}/",
        f"{base}labels/{HUGE}/",
        f"{base}members/{HUGE}/",
    ):
        assert client.get(path).status_code == 404, path
    annotation.refresh_from_db()
    assert annotation.version == 1


def test_delete_with_a_non_object_body_is_428(client_for, project, make_image, make_annotation):
    annotation = make_annotation(make_image(project))
    response = client_for("owner").delete(
        detail_url(annotation.id, project.id), json.dumps([1]), content_type="application/json"
    )
    assert response.status_code == 428
