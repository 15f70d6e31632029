"""The work queue over REST: bulk assignment by managers, an annotator's next image, done,
and the image status the server keeps."""

from typing import Any

import pytest

from samapp.models import Image
from samapp.services.images import MAX_ASSIGN_IMAGES
from tests.conftest import rle_box


def assign_url(project: Any) -> str:
    return f"/api/projects/{project.id}/images/assign/"


def next_url(project: Any) -> str:
    return f"/api/projects/{project.id}/queue/next/"


def done_url(image: Any) -> str:
    return f"/api/projects/{image.project_id}/queue/{image.id}/done/"


def test_managers_assign_images_in_bulk(
    client_for, project, other_project, make_image, users
) -> None:
    mine = [make_image(project) for _ in range(3)]
    foreign = make_image(other_project)
    ids = [image.id for image in mine]
    response = client_for("manager").post(
        assign_url(project),
        {"images": [*ids, foreign.id, 999_999, ids[0]], "assignee": users["annotator"].id},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"assigned": ids, "missing": [foreign.id, 999_999]}
    assert set(
        Image.objects.filter(assignee=users["annotator"]).values_list("id", flat=True)
    ) == set(ids)
    foreign.refresh_from_db()
    assert foreign.assignee is None
    # null unassigns
    client_for("owner").post(
        assign_url(project), {"images": ids[:1], "assignee": None}, format="json"
    )
    assert Image.objects.get(pk=ids[0]).assignee is None


@pytest.mark.parametrize(
    ("who", "assignee", "status"),
    [
        ("annotator", "annotator", 403),
        ("reviewer", "annotator", 403),
        ("manager", "viewer", 400),  # a viewer cannot annotate
        ("manager", "outsider", 400),  # not a member
    ],
)
def test_assignment_rules(client_for, project, make_image, users, who, assignee, status) -> None:
    image = make_image(project)
    response = client_for(who).post(
        assign_url(project), {"images": [image.id], "assignee": users[assignee].id}, format="json"
    )
    assert response.status_code == status
    image.refresh_from_db()
    assert image.assignee is None


def test_assignment_size_is_bounded(client_for, project, users) -> None:
    response = client_for("manager").post(
        assign_url(project),
        {"images": list(range(1, MAX_ASSIGN_IMAGES + 2)), "assignee": users["annotator"].id},
        format="json",
    )
    assert response.status_code == 400


def test_next_orders_rejected_work_then_started_then_new(
    client_for, project, make_image, make_annotation, users
) -> None:
    annotator = users["annotator"]
    fresh = make_image(project, assignee=annotator)
    started = make_image(project, assignee=annotator, status="in_progress")
    reworked = make_image(project, assignee=annotator, status="in_progress")
    make_annotation(reworked, author=annotator, review_state="rejected")
    make_image(project, assignee=annotator, status="done")
    make_image(project, assignee=users["extra"])  # someone else's
    make_image(project)  # nobody's
    client = client_for("annotator")
    queue = client.get(f"/api/projects/{project.id}/queue/").json()
    assert [row["id"] for row in queue["results"]] == [reworked.id, started.id, fresh.id]
    assert [row["rejected_count"] for row in queue["results"]] == [1, 0, 0]
    assert client.get(next_url(project)).json()["id"] == reworked.id


def test_start_annotate_done_moves_on(client_for, project, make_image, users) -> None:
    first = make_image(project, assignee=users["annotator"])
    second = make_image(project, assignee=users["annotator"])
    client = client_for("annotator")
    assert client.get(next_url(project)).json()["id"] == first.id
    created = client.post(
        f"/api/projects/{project.id}/images/{first.id}/annotations/",
        {"rle": rle_box(6, 8, (0, 0, 2, 2))},
        format="json",
    )
    assert created.status_code == 201
    first.refresh_from_db()
    assert first.status == "in_progress"  # set by the annotation's creation, not the browser
    done = client.post(done_url(first))
    assert done.status_code == 200
    assert done.json()["image"]["status"] == "done"
    assert done.json()["next"]["id"] == second.id
    last = client.post(done_url(second)).json()
    assert last["next"] is None
    assert client.get(next_url(project)).status_code == 204


def test_done_follows_the_transition_table(client_for, project, make_image, users) -> None:
    theirs = make_image(project, assignee=users["extra"])
    reviewed = make_image(project, assignee=users["annotator"], status="reviewed")
    annotator = client_for("annotator")
    assert annotator.post(done_url(theirs)).status_code == 403
    assert annotator.post(done_url(reviewed)).status_code == 403
    assert client_for("viewer").post(done_url(theirs)).status_code == 403
    assert set(Image.objects.values_list("status", flat=True)) == {"new", "reviewed"}


def test_removing_a_member_clears_their_assignments(client_for, project, make_image, users):
    from samapp.models import Membership

    image = make_image(project, assignee=users["extra"])
    member = Membership.objects.get(project=project, user=users["extra"])
    assert (
        client_for("manager").delete(f"/api/projects/{project.id}/members/{member.id}/").status_code
        == 204
    )
    image.refresh_from_db()
    assert image.assignee is None
