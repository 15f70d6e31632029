"""Segment everything as a job, then bulk review of its proposals."""

import pytest
from asgiref.sync import sync_to_async

from samapp.choices import JobState
from samapp.models import Annotation, SegmentJob
from tests.fixtures import drain, receive_until

LOOSE = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


@pytest.mark.django_db(transaction=True)
async def test_segment_everything_job_end_to_end(connect, project, make_image, client_for) -> None:
    image = await sync_to_async(make_image)(project, width=48, height=32)
    _, socket = await connect(project.id, "viewer")
    await receive_until(socket, "hello")
    annotator = await sync_to_async(client_for)("annotator")
    url = f"/api/projects/{project.id}/images/{image.id}/segment-everything/"
    response = await sync_to_async(annotator.post)(url, LOOSE, format="json")
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]

    progress, created = [], []
    while True:
        message = await socket.receive_json_from(timeout=60)
        if message["event"].startswith("annotation"):
            created.append(message)
        if message["event"] != "job.progress":
            continue
        assert message["payload"]["kind"] == "segment"
        assert message["payload"]["id"] == job_id
        progress.append(message["payload"]["progress"])
        if message["payload"]["state"] in ("done", "failed"):
            break
    assert message["payload"]["state"] == "done", message["payload"]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    job = await sync_to_async(SegmentJob.objects.get)(pk=job_id)
    assert job.state == JobState.DONE
    assert job.annotation_count > 0
    proposals = await sync_to_async(list)(Annotation.objects.filter(image=image))
    assert len(proposals) == job.annotation_count
    assert {(a.source, a.review_state, a.model_key) for a in proposals} == {
        ("automatic", "proposed", "sam_tiny")
    }
    assert all(a.rle["size"] == [32, 48] and a.area > 0 for a in proposals)
    detail = await sync_to_async(annotator.get)(
        f"/api/projects/{project.id}/segment-jobs/{job_id}/"
    )
    assert detail.json()["state"] == "done"
    # One event for all of them: a page showing the image fetches its annotations once.
    assert [(c["event"], c["payload"]["count"], c["payload"]["images"]) for c in created] == [
        ("annotations.bulk_created", job.annotation_count, [image.id])
    ]
    await socket.disconnect()


@pytest.mark.django_db
def test_segment_everything_needs_annotate(client_for, project, make_image) -> None:
    image = make_image(project)
    url = f"/api/projects/{project.id}/images/{image.id}/segment-everything/"
    assert client_for("viewer").post(url, {}, format="json").status_code == 403
    assert client_for("outsider").post(url, {}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_bulk_review_changes_and_broadcasts_one_decision(
    connect, project, other_project, make_image, make_annotation, client_for
) -> None:
    image = await sync_to_async(make_image)(project, width=8, height=6)
    ids = [
        (
            await sync_to_async(make_annotation)(image, source="automatic", review_state="proposed")
        ).id
        for _ in range(3)
    ]
    foreign_image = await sync_to_async(make_image)(other_project, width=8, height=6)
    foreign = await sync_to_async(make_annotation)(foreign_image)
    _, socket = await connect(project.id, "viewer")
    await receive_until(socket, "hello")
    url = f"/api/projects/{project.id}/annotations/review/"
    body = {"ids": [*ids, foreign.id], "review_state": "accepted"}
    denied = await sync_to_async(lambda: client_for("annotator").post(url, body, format="json"))()
    assert denied.status_code == 403
    response = await sync_to_async(lambda: client_for("reviewer").post(url, body, format="json"))()
    assert response.status_code == 200
    assert response.json() == {"updated": ids, "unchanged": [], "missing": [foreign.id]}
    # One event names every annotation the decision changed, not the foreign one.
    message = await receive_until(socket, "annotations.reviewed")
    assert message["payload"]["review_state"] == "accepted"
    assert message["payload"]["annotations"] == [
        {"id": pk, "image": image.id, "version": 2} for pk in ids
    ]
    assert not [m for m in await drain(socket) if m["event"].startswith("annotation")]
    again = await sync_to_async(lambda: client_for("reviewer").post(url, body, format="json"))()
    assert again.json()["unchanged"] == ids
    states = await sync_to_async(list)(
        Annotation.objects.filter(pk__in=ids).values_list("review_state", flat=True)
    )
    assert set(states) == {"accepted"}
    bad = await sync_to_async(
        lambda: client_for("reviewer").post(
            url, {"ids": ids, "review_state": "proposed"}, format="json"
        )
    )()
    assert bad.status_code == 400
    await socket.disconnect()


@pytest.mark.django_db
def test_a_redelivered_job_replaces_its_pending_proposals_and_keeps_reviewed_ones(
    project, make_image, users, annotation_broadcasts, django_capture_on_commit_callbacks
) -> None:
    from samapp.services.reviews import annotations_review
    from samapp.services.segment import segment_job_run, segment_job_start

    image = make_image(project, width=48, height=32)
    job = segment_job_start(image=image, user=users["annotator"], options=LOOSE)
    segment_job_run(job_id=job.pk)
    first = list(Annotation.objects.filter(image=image).order_by("pk"))
    assert len(first) >= 2
    accepted = first[0]
    annotations_review(
        project=project, ids=[accepted.pk], review_state="accepted", reviewer=users["reviewer"]
    )
    # The broker hands the job over again (its worker died before acknowledging it).
    SegmentJob.objects.filter(pk=job.pk).update(state=JobState.QUEUED)
    with django_capture_on_commit_callbacks(execute=True):
        segment_job_run(job_id=job.pk)
    after = Annotation.objects.filter(image=image)
    assert after.filter(pk=accepted.pk, review_state="accepted").exists()
    assert not after.filter(pk__in=[a.pk for a in first[1:]]).exists()
    assert after.filter(review_state="proposed").count() == len(first)
    deleted = [e for e in annotation_broadcasts if e["event"] == "annotation.deleted"]
    assert sorted(e["payload"]["id"] for e in deleted) == [a.pk for a in first[1:]]
    assert [e["event"] for e in annotation_broadcasts if e["event"] != "annotation.deleted"] == [
        "annotations.bulk_created"
    ]
