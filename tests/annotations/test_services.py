"""Annotation services: validation, derived fields, optimistic concurrency, broadcasts."""

import threading
from collections import Counter
from typing import Any

import pytest

from samapp.errors import ApplicationError, PreconditionRequiredError, VersionConflictError
from samapp.models import Annotation
from samapp.services.annotations import (
    AnnotationDraft,
    annotation_create,
    annotation_delete,
    annotation_update,
    annotations_bulk_create,
)
from tests.conftest import rle_box


@pytest.fixture
def image(project, make_image) -> Any:
    return make_image(project, width=8, height=6)


def test_create_validates_and_derives(image, users, project) -> None:
    cat = project.labels.get(name="cat")
    annotation = annotation_create(
        image=image, author=users["annotator"], rle=rle_box(6, 8, (2, 1, 5, 6)), label=cat
    )
    assert (annotation.version, annotation.area, annotation.bbox) == (1, 15, [2.0, 1.0, 3.0, 5.0])
    assert annotation.label == cat


def test_create_rejects_bad_masks_and_foreign_labels(image, users, other_project) -> None:
    with pytest.raises(ApplicationError, match="does not match the image"):
        annotation_create(image=image, author=None, rle=rle_box(8, 6))
    with pytest.raises(ApplicationError, match="Invalid mask"):
        annotation_create(image=image, author=None, rle={"size": [6, 8], "counts": [3]})
    with pytest.raises(ApplicationError, match="another project"):
        annotation_create(
            image=image, author=None, rle=rle_box(6, 8), label=other_project.labels.get()
        )
    assert Annotation.objects.count() == 0


def test_update_needs_a_version_and_refuses_stale_ones(image, make_annotation) -> None:
    annotation = make_annotation(image)
    with pytest.raises(PreconditionRequiredError):
        annotation_update(annotation=annotation, expected_version=None, data={"model_key": "x"})
    updated = annotation_update(annotation=annotation, expected_version=1, data={"model_key": "x"})
    assert updated.version == 2
    with pytest.raises(VersionConflictError) as caught:
        annotation_update(annotation=annotation, expected_version=1, data={"model_key": "y"})
    assert caught.value.status_code == 412
    assert caught.value.extra["current"]["version"] == 2
    assert caught.value.extra["current"]["model_key"] == "x"
    assert Annotation.objects.get(pk=annotation.pk).model_key == "x"


def test_update_recomputes_bbox_and_area_and_refuses_unknown_fields(image, make_annotation) -> None:
    annotation = make_annotation(image)
    updated = annotation_update(
        annotation=annotation, expected_version=1, data={"rle": rle_box(6, 8, (0, 0, 2, 6))}
    )
    assert (updated.area, updated.bbox) == (12, [0.0, 0.0, 2.0, 6.0])
    for data in ({"version": 9}, {"author": None}, {"image": 1}, {"area": 1}):
        with pytest.raises(ApplicationError, match="Cannot change"):
            annotation_update(annotation=updated, expected_version=2, data=data)
    assert Annotation.objects.get(pk=annotation.pk).version == 2


def test_delete_needs_the_current_version(image, make_annotation) -> None:
    annotation = make_annotation(image)
    annotation_update(annotation=annotation, expected_version=1, data={"model_key": "x"})
    with pytest.raises(PreconditionRequiredError):
        annotation_delete(annotation=annotation, expected_version=None)
    with pytest.raises(VersionConflictError):
        annotation_delete(annotation=annotation, expected_version=1)
    annotation_delete(annotation=annotation, expected_version=2)
    assert not Annotation.objects.exists()
    with pytest.raises(ApplicationError, match="deleted meanwhile"):
        annotation_update(annotation=annotation, expected_version=2, data={"model_key": "y"})


def test_each_change_is_broadcast_once_after_commit(
    image, users, annotation_broadcasts, django_capture_on_commit_callbacks
) -> None:
    events = annotation_broadcasts
    with django_capture_on_commit_callbacks(execute=True):
        annotation = annotation_create(image=image, author=users["annotator"], rle=rle_box(6, 8))
    with django_capture_on_commit_callbacks(execute=True):
        annotation_update(annotation=annotation, expected_version=1, data={"model_key": "m"})
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(VersionConflictError):
        annotation_update(annotation=annotation, expected_version=1, data={"model_key": "n"})
    with django_capture_on_commit_callbacks(execute=True):
        annotation_delete(annotation=annotation, expected_version=2)
    assert [(e["event"], e["project_id"]) for e in events] == [
        ("annotation.created", image.project_id),
        ("annotation.updated", image.project_id),
        ("annotation.deleted", image.project_id),
    ]
    assert events[1]["payload"]["version"] == 2
    assert events[1]["payload"]["model_key"] == "m"
    assert events[2]["payload"].items() >= {"id": annotation.id, "version": 3}.items()


def test_a_bulk_create_is_one_event_per_project_with_its_own_count(
    image,
    users,
    other_project,
    make_image,
    annotation_broadcasts,
    django_capture_on_commit_callbacks,
) -> None:
    elsewhere = make_image(other_project, width=8, height=6)
    drafts = [
        AnnotationDraft(image=image, rle=rle_box(6, 8), predicted_iou=1.3, model_key="sam_tiny"),
        AnnotationDraft(image=image, rle=rle_box(6, 8, (0, 0, 2, 2)), prompts={"points": []}),
        AnnotationDraft(image=elsewhere, rle=rle_box(6, 8)),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        created = annotations_bulk_create(drafts=drafts, author=users["annotator"])
    assert [a.image_id for a in Annotation.objects.filter(pk__in=[a.pk for a in created])] == [
        image.id,
        image.id,
        elsewhere.id,
    ]
    assert (created[0].predicted_iou, created[0].model_key) == (1.0, "sam_tiny")
    assert created[1].prompts == {"points": []}
    assert sorted(
        (e["project_id"], e["event"], e["payload"]["count"], e["payload"]["images"])
        for e in annotation_broadcasts
    ) == sorted(
        [
            (image.project_id, "annotations.bulk_created", 2, [image.id]),
            (other_project.id, "annotations.bulk_created", 1, [elsewhere.id]),
        ]
    )


def test_nothing_is_broadcast_before_commit(image, users, annotation_broadcasts) -> None:
    # inside the test's transaction (never committed) nothing may leave
    annotation = annotation_create(image=image, author=None, rle=rle_box(6, 8))
    annotation_update(annotation=annotation, expected_version=1, data={"model_key": "x"})
    assert annotation_broadcasts == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_read_modify_write(project, make_image, make_annotation) -> None:
    """Ten threads, each repeating: read the annotation, then write based on the version it
    read. Whatever the interleaving: exactly one write succeeds per version, the losers get a
    VersionConflictError, and the final version is 1 + the number of successes."""
    from django.db import connection

    annotation = make_annotation(make_image(project, width=8, height=6))
    threads_count, rounds = 10, 6
    barrier = threading.Barrier(threads_count)
    lock = threading.Lock()
    wins: list[int] = []  # the version each successful write was based on
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_number in range(rounds):
                barrier.wait(timeout=60)  # everyone reads at about the same time
                current = Annotation.objects.select_related("image").get(pk=annotation.pk)
                read_version = current.version
                try:
                    annotation_update(
                        annotation=current,
                        expected_version=read_version,
                        data={"model_key": f"t{index}r{round_number}"},
                    )
                except VersionConflictError as exc:  # losing the race is allowed
                    assert exc.extra["current"]["version"] > read_version  # noqa: PT017
                    with lock:
                        conflicts.append(read_version)
                else:
                    with lock:
                        wins.append(read_version)
        except BaseException as exc:  # surfaced below, with the thread's traceback
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    final = Annotation.objects.get(pk=annotation.pk)
    assert len(wins) + len(conflicts) == threads_count * rounds
    per_version = Counter(wins)
    assert all(count == 1 for count in per_version.values()), per_version
    assert final.version == 1 + len(wins)
    assert sorted(wins) == list(range(1, final.version))
    assert len(wins) >= rounds  # at least one winner per round
