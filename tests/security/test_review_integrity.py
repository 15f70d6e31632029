"""Review integrity: what an annotator writes cannot bypass review, undo a review, touch other
people's work, or forge the provenance that analytics and fine-tuning read.

- With the project's review policy on (the default), an annotator's work lands `proposed`;
  their edit of accepted work sends it back to review.
- Images move between statuses by one role x transition table: an annotator cannot move a
  `reviewed` image back, nor work on images assigned to someone else.
- Annotators edit or delete only their own work, and never delete work a reviewer accepted.
- `source`, `model_key` and `predicted_iou` are set or checked by the server.
- A rejection's reason reaches the annotator, and the list API's filters work.
"""

from typing import Any

import pytest

from samapp.models import Annotation, Image
from tests.conftest import rle_box


@pytest.fixture
def image(project: Any, make_image: Any) -> Image:
    return make_image(project, width=8, height=6)


def create_url(image: Any) -> str:
    return f"/api/projects/{image.project_id}/images/{image.id}/annotations/"


def detail_url(annotation: Any) -> str:
    return f"/api/projects/{annotation.image.project_id}/annotations/{annotation.id}/"


def post(client: Any, image: Any, **body: Any) -> Any:
    body.setdefault("rle", rle_box(image.height, image.width, (1, 1, 4, 3)))
    return client.post(create_url(image), body, format="json")


def patch(client: Any, annotation: Any, body: dict[str, Any]) -> Any:
    return client.patch(
        detail_url(annotation), body, format="json", HTTP_IF_MATCH=f'"{annotation.version}"'
    )


def test_an_annotators_work_lands_pending_review(client_for, image, project) -> None:
    response = post(client_for("annotator"), image)
    assert response.status_code == 201
    assert response.json()["review_state"] == "proposed"
    # a reviewer's own work is accepted; with the policy off, an annotator's is too
    assert post(client_for("reviewer"), image).json()["review_state"] == "accepted"
    project.review_policy = "accepted"
    project.save()
    assert post(client_for("annotator"), image).json()["review_state"] == "accepted"


def test_an_annotators_edit_of_accepted_work_goes_back_to_review(client_for, image, users) -> None:
    created = post(client_for("annotator"), image).json()
    annotation = Annotation.objects.get(pk=created["id"])
    accepted = patch(client_for("reviewer"), annotation, {"review_state": "accepted"})
    assert accepted.json()["reviewed_by"] == users["reviewer"].id
    annotation.refresh_from_db()
    edited = patch(client_for("annotator"), annotation, {"rle": rle_box(6, 8, (0, 0, 8, 6))}).json()
    assert edited["review_state"] == "proposed"
    assert (edited["reviewed_by"], edited["reviewed_at"]) == (None, None)


@pytest.mark.parametrize("target", ["new", "in_progress", "done"])
def test_an_annotator_cannot_move_a_reviewed_image_back(client_for, project, image, target):
    image.status = "reviewed"
    image.save()
    response = client_for("annotator").patch(
        f"/api/projects/{project.id}/images/{image.id}/", {"status": target}, format="json"
    )
    assert response.status_code == 403
    image.refresh_from_db()
    assert image.status == "reviewed"


# The intended table, written out independently of samapp.roles: (from, to) -> the least
# role that may make the move (owner > manager > reviewer > annotator; viewers never).
RANK = {"viewer": 0, "annotator": 1, "reviewer": 2, "manager": 3, "owner": 4}
LEAST = {
    ("new", "in_progress"): "annotator",
    ("new", "done"): "annotator",
    ("in_progress", "done"): "annotator",
    ("done", "in_progress"): "annotator",
    ("new", "reviewed"): "reviewer",
    ("in_progress", "reviewed"): "reviewer",
    ("done", "reviewed"): "reviewer",
    ("reviewed", "in_progress"): "reviewer",
    ("reviewed", "done"): "reviewer",
    ("in_progress", "new"): "manager",
    ("done", "new"): "manager",
    ("reviewed", "new"): "manager",
}


@pytest.mark.parametrize("role", list(RANK))
def test_image_transitions_follow_the_role_table(client_for, project, make_image, role) -> None:
    client = client_for(role)
    refused = []
    for (current, wanted), least in LEAST.items():
        image = make_image(project, status=current)
        response = client.patch(
            f"/api/projects/{project.id}/images/{image.id}/", {"status": wanted}, format="json"
        )
        allowed = RANK[role] >= RANK[least]
        assert response.status_code == (200 if allowed else 403), (role, current, wanted)
        image.refresh_from_db()
        assert image.status == (wanted if allowed else current)
        if not allowed:
            refused.append((current, wanted))
    assert len(refused) == sum(RANK[role] < RANK[least] for least in LEAST.values())


def test_annotators_work_only_on_their_own_or_unassigned_images(
    client_for, project, make_image, users
) -> None:
    theirs = make_image(project, assignee=users["extra"])
    annotator = client_for("annotator")
    assert post(annotator, theirs).status_code == 403
    moved = annotator.patch(
        f"/api/projects/{project.id}/images/{theirs.id}/", {"status": "done"}, format="json"
    )
    assert moved.status_code == 403
    assert not Annotation.objects.filter(image=theirs).exists()
    theirs.refresh_from_db()
    assert theirs.status == "new"
    assert post(client_for("extra"), theirs).status_code == 201


def test_annotators_edit_or_delete_only_their_own_work(
    client_for, image, make_annotation, users
) -> None:
    others = make_annotation(image, author=users["extra"], review_state="proposed")
    annotator = client_for("annotator")
    assert patch(annotator, others, {"label": None}).status_code == 403
    assert annotator.delete(detail_url(others), HTTP_IF_MATCH='"1"').status_code == 403
    others.refresh_from_db()
    assert others.version == 1
    # their own unreviewed work they may delete
    mine = make_annotation(image, author=users["annotator"], review_state="proposed")
    assert annotator.delete(detail_url(mine), HTTP_IF_MATCH='"1"').status_code == 204


def test_annotators_cannot_delete_work_a_reviewer_accepted(client_for, image, users) -> None:
    created = post(client_for("annotator"), image).json()
    annotation = Annotation.objects.get(pk=created["id"])
    patch(client_for("reviewer"), annotation, {"review_state": "accepted"})
    response = client_for("annotator").delete(detail_url(annotation), HTTP_IF_MATCH='"2"')
    assert response.status_code == 403
    assert Annotation.objects.filter(pk=annotation.pk, review_state="accepted").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"source": "automatic"},
        {"source": "imported"},
        {"source": "click", "model_key": "vit_h"},
        {"source": "click", "model_key": "sam_tiny", "predicted_iou": 1.5},
        {"source": "box", "model_key": "sam_tiny", "predicted_iou": -0.1},
    ],
    ids=["automatic", "imported", "other-model", "iou-above-1", "iou-below-0"],
)
def test_forged_provenance_is_refused(client_for, image, body) -> None:
    response = post(client_for("annotator"), image, **body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Annotation.objects.exists()


def test_provenance_is_set_by_the_server(client_for, image, project) -> None:
    annotator = client_for("annotator")
    manual = post(annotator, image, source="manual", model_key="evil", predicted_iou=0.99).json()
    assert (manual["model_key"], manual["predicted_iou"]) == ("", None)
    click = post(annotator, image, source="click", predicted_iou=0.8).json()
    assert (click["model_key"], click["predicted_iou"]) == (project.default_model_key, 0.8)
    annotation = Annotation.objects.get(pk=click["id"])
    # an edit cannot turn it into a model's proposal either
    assert patch(annotator, annotation, {"source": "automatic"}).status_code == 400


def test_a_rejection_reaches_the_annotator_with_its_reason(
    client_for, project, make_image, users
) -> None:
    image = make_image(project, assignee=users["annotator"])
    annotator = client_for("annotator")
    created = post(annotator, image).json()
    assert annotator.post(f"/api/projects/{project.id}/queue/{image.id}/done/").status_code == 200
    rejected = client_for("reviewer").post(
        f"/api/projects/{project.id}/annotations/review/",
        {"ids": [created["id"]], "review_state": "rejected", "reason": "misses the tail"},
        format="json",
    )
    assert rejected.json()["updated"] == [created["id"]]
    annotation = annotator.get(f"/api/projects/{project.id}/annotations/{created['id']}/").json()
    assert (annotation["review_state"], annotation["review_reason"]) == (
        "rejected",
        "misses the tail",
    )
    assert annotation["reviewed_by"] == users["reviewer"].id
    nxt = annotator.get(f"/api/projects/{project.id}/queue/next/").json()
    assert (nxt["id"], nxt["status"], nxt["rejected_count"]) == (image.id, "in_progress", 1)
    assert [r["review_reason"] for r in nxt["rejections"]] == ["misses the tail"]


def test_annotation_list_filters_work(client_for, project, make_image, make_annotation, users):
    first, second = make_image(project), make_image(project)
    cat, dog = project.labels.order_by("id")
    a = make_annotation(first, label=cat, review_state="proposed")
    b = make_annotation(first, label=dog, author=users["extra"])
    c = make_annotation(second, label=cat, review_state="rejected", author=users["extra"])
    viewer = client_for("viewer")
    url = f"/api/projects/{project.id}/annotations/"

    def ids(**query: Any) -> list[int]:
        response = viewer.get(url, query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(review_state="proposed") == [a.id]
    assert ids(review_state="accepted") == [b.id]
    assert ids(author=users["extra"].id) == [b.id, c.id]
    assert ids(label=cat.id) == [a.id, c.id]
    assert ids(image=first.id, label=cat.id) == [a.id]
    assert ids(author=users["extra"].id, review_state="rejected", image=second.id) == [c.id]
    assert viewer.get(url, {"review_state": "maybe"}).status_code == 400
