"""What one annotation write costs the database: a ceiling on the queries of a create, a PATCH
and a bulk review (which must not grow with the number of annotations or members), and the
event log's seq counter that replaced a MAX over the log."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from samapp.models import AnnotationEvent, Project
from samapp.selectors.annotation_events import annotation_events_latest_seq
from samapp.services.reviews import annotations_review
from tests.conftest import rle_box

# Token, membership (with its project), the image or annotation; then inside the transaction
# (BEGIN … COMMIT) the project lock that allocates the seq, the write, the event row.
CREATE_QUERIES = 8
PATCH_QUERIES = 8


@pytest.fixture
def image(project, make_image) -> Any:
    return make_image(project, width=8, height=6)


def create(client: Any, image: Any, seed: int = 1) -> Any:
    return client.post(
        f"/api/projects/{image.project_id}/images/{image.id}/annotations/",
        {"rle": rle_box(6, 8, (1, 1, 2 + seed % 5, 3)), "source": "click"},
        format="json",
    )


def patch(client: Any, project_id: int, body: dict[str, Any], seed: int) -> Any:
    return client.patch(
        f"/api/projects/{project_id}/annotations/{body['id']}/",
        {"rle": rle_box(6, 8, (0, 0, 1 + seed % 6, 2))},
        format="json",
        HTTP_IF_MATCH=f'"{body["version"]}"',
    )


def test_a_create_and_a_patch_stay_under_their_query_ceilings(client_for, image) -> None:
    manager = client_for("manager")
    create(manager, image)  # first request of the client: warm caches
    with CaptureQueriesContext(connection) as created:
        response = create(manager, image, seed=2)
    assert response.status_code == 201, response.json()
    with CaptureQueriesContext(connection) as patched:
        again = patch(manager, image.project_id, response.json(), seed=3)
    assert again.status_code == 200, again.json()
    assert len(created) <= CREATE_QUERIES, [q["sql"][:120] for q in created]
    assert len(patched) <= PATCH_QUERIES, [q["sql"][:120] for q in patched]


def test_the_query_count_does_not_grow_with_the_team(
    client_for, image, project, django_user_model
) -> None:
    from samapp.services.projects import member_add

    manager = client_for("manager")
    first = create(manager, image).json()
    with CaptureQueriesContext(connection) as small_team:
        first = patch(manager, project.pk, first, seed=1).json()
    for i in range(15):
        user = django_user_model.objects.create_user(username=f"extra{i}", password="x")
        member_add(project=project, user=user, role="annotator")
    with CaptureQueriesContext(connection) as big_team:
        patch(manager, project.pk, first, seed=2)
    assert len(big_team) == len(small_team)


def test_a_patch_answers_what_is_stored(client_for, image) -> None:
    """The PATCH answer is built from the request's instance and the change, not read back:
    it must equal what a later read returns."""
    manager = client_for("manager")
    created = create(manager, image).json()
    answer = patch(manager, image.project_id, created, seed=4).json()
    stored = manager.get(f"/api/projects/{image.project_id}/annotations/{created['id']}/").json()
    assert answer == stored
    assert answer["version"] == created["version"] + 1
    assert answer["updated_at"] > created["updated_at"]


def test_bulk_review_queries_do_not_grow_with_the_batch(
    project, make_image, make_annotation, users
) -> None:
    def review(count: int) -> int:
        image = make_image(project, name=f"batch-{count}.png", color=(count, 0, 0))
        ids = [make_annotation(image, review_state="proposed").id for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            result = annotations_review(
                project=project, ids=ids, review_state="accepted", reviewer=users["reviewer"]
            )
        assert result["updated"] == sorted(ids)
        return len(queries)

    assert review(2) == review(12)


@pytest.mark.parametrize("annotations", ["reassign", "delete"])
def test_a_used_label_deletion_queries_do_not_grow_with_its_annotations(
    project, make_image, make_annotation, annotations
) -> None:
    from samapp.services.projects import label_create, label_delete

    other = project.labels.first()

    def delete(count: int) -> int:
        label = label_create(project=project, name=f"batch-{count}", color="#123456")
        image = make_image(project, name=f"batch-{count}.png", color=(count, 0, 0))
        for _ in range(count):
            make_annotation(image, label=label)
        seq_before = Project.objects.get(pk=project.pk).annotation_seq
        with CaptureQueriesContext(connection) as queries:
            label_delete(
                label=label,
                annotations=annotations,
                reassign_to=other if annotations == "reassign" else None,
            )
        seqs = AnnotationEvent.objects.filter(project=project, seq__gt=seq_before)
        assert sorted(seqs.values_list("seq", flat=True)) == [
            seq_before + 1 + i for i in range(count)
        ]
        return len(queries)

    assert delete(2) == delete(12)


def test_seqs_are_consecutive_and_the_counter_is_the_logs_last(
    client_for, image, project, make_annotation, users
) -> None:
    manager = client_for("manager")
    bodies = [create(manager, image, seed=i).json() for i in range(3)]
    patch(manager, project.pk, bodies[0], seed=9)
    annotations_review(
        project=project,
        ids=[body["id"] for body in bodies],
        review_state="rejected",
        reason="too loose",
        reviewer=users["reviewer"],
    )
    seqs = list(AnnotationEvent.objects.filter(project=project).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 3 + 1 + 1  # the review is one decision, one event
    assert Project.objects.get(pk=project.pk).annotation_seq == seqs[-1]
    assert annotation_events_latest_seq(project_id=project.pk) == seqs[-1]


def test_saving_a_stale_project_does_not_hand_out_seqs_again(client_for, image, project) -> None:
    manager = client_for("manager")
    stale = Project.objects.get(pk=project.pk)
    create(manager, image, seed=1)
    stale.review_policy = "accepted"
    stale.save()
    assert create(manager, image, seed=2).status_code == 201
    seqs = list(AnnotationEvent.objects.filter(project=project).values_list("seq", flat=True))
    assert seqs == [1, 2]
    assert Project.objects.get(pk=project.pk).review_policy == "accepted"
