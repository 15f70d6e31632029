"""Project settings and job sizes: one schema with the endpoints' bounds, and quotas.

An ordinary account owns the projects it creates, so anything a project's settings or a job
request can ask for is what an attacker can ask for: `auto_points_per_side: 5000` once made
a 128-point segment-everything job hold the only worker for 327 s."""

from typing import Any

import pytest

from samapp.choices import JobState
from samapp.models import ExportJob, Project, SegmentJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs_stay_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker picks the jobs up: they stay queued, as behind a long job."""
    for task in ("segment_job_run_task", "export_run_task", "proposals_run_task"):
        monkeypatch.setattr(f"samapp.tasks.{task}.delay", lambda *args: None)


def patch_settings(client: Any, project: Project, changes: Any) -> Any:
    return client.patch(f"/api/projects/{project.id}/", {"settings": changes}, format="json")


def segment(client: Any, project: Project, image: Any, body: dict[str, Any]) -> Any:
    url = f"/api/projects/{project.id}/images/{image.id}/segment-everything/"
    return client.post(url, body, format="json")


@pytest.mark.parametrize(
    "changes",
    [
        {"auto_points_per_side": 5000},
        {"auto_points_per_side": "abc"},
        {"auto_points_per_side": 0},
        {"auto_points_per_side": 32.5},
        {"auto_points_per_side": True},
        {"auto_pred_iou_thresh": 1.5},
        {"auto_stability_score_thresh": "high"},
        {"auto_min_mask_region_area": -1},
        {"export_polygon_tolerance": 1e300},
        {"anything_else": "x" * 100_000},
    ],
)
def test_out_of_bounds_or_mistyped_settings_are_refused_and_nothing_is_stored(
    client_for, project, changes
) -> None:
    before = dict(project.settings)
    response = patch_settings(client_for("owner"), project, changes)
    assert response.status_code == 400, response.content
    assert response.json()["problems"][0].startswith(next(iter(changes)))
    project.refresh_from_db()
    assert project.settings == before


def test_settings_and_the_segment_everything_endpoint_share_their_bounds(
    client_for, project, make_image, jobs_stay_queued
) -> None:
    """Every auto-segment setting takes exactly what the endpoint's matching option takes:
    (option, setting, lowest accepted, highest accepted, just above)."""
    owner = client_for("owner")
    image = make_image(project, width=32, height=24)
    bounds = [
        ("points_per_side", "auto_points_per_side", 1, 64, 65),
        ("pred_iou_thresh", "auto_pred_iou_thresh", 0.0, 1.0, 1.001),
        ("stability_score_thresh", "auto_stability_score_thresh", 0.0, 1.0, 1.001),
        ("min_mask_region_area", "auto_min_mask_region_area", 0, 50_000_000, 50_000_001),
    ]
    for option, setting, low, high, above in bounds:
        for value, ok in ((low, True), (high, True), (above, False), ("abc", False)):
            stored = patch_settings(owner, project, {setting: value})
            assert stored.status_code == (200 if ok else 400), (setting, value, stored.content)
            started = segment(owner, project, image, {option: value})
            assert started.status_code == (202 if ok else 400), (option, value, started.content)
            SegmentJob.objects.all().delete()  # keep clear of the job quota


def test_a_setting_stored_before_its_bound_stops_the_job_with_a_message(
    client_for, project, make_image, jobs_stay_queued
) -> None:
    image = make_image(project, width=32, height=24)
    for stored in (5000, "abc"):
        Project.objects.filter(pk=project.pk).update(
            settings={**project.settings, "auto_points_per_side": stored}
        )
        response = segment(client_for("annotator"), project, image, {})
        assert response.status_code == 400, response.content
        assert "auto_points_per_side" in response.json()["detail"]
        proposals = client_for("annotator").post(
            f"/api/projects/{project.id}/proposals/", {"image_ids": [image.id]}, format="json"
        )
        assert proposals.status_code == 400
        assert "auto_points_per_side" in proposals.json()["detail"]
    assert not SegmentJob.objects.exists()


def test_jobs_in_flight_are_capped_per_user_and_per_project(
    client_for, project, make_image, jobs_stay_queued, settings
) -> None:
    settings.SAM_MAX_ACTIVE_JOBS_PER_USER = 2
    settings.SAM_MAX_ACTIVE_JOBS_PER_PROJECT = 4
    image = make_image(project, width=32, height=24)
    statuses = {
        who: [segment(client_for(who), project, image, {}).status_code for _ in range(3)]
        for who in ("annotator", "reviewer")
    }
    assert statuses == {"annotator": [202, 202, 429], "reviewer": [202, 202, 429]}
    refused = segment(client_for("manager"), project, image, {})
    assert refused.status_code == 429
    assert "This project has 4 jobs queued or running (at most 4)" in refused.json()["detail"]
    export = client_for("viewer").post(
        f"/api/projects/{project.id}/exports/", {"format": "coco"}, format="json"
    )
    assert export.status_code == 429
    assert SegmentJob.objects.count() == 4
    assert not ExportJob.objects.exists()
    # One finishes: the next one is accepted.
    SegmentJob.objects.filter(pk=SegmentJob.objects.first().pk).update(state=JobState.DONE)
    assert segment(client_for("manager"), project, image, {}).status_code == 202


def test_a_training_job_past_the_step_quota_is_refused(client_for, project, settings) -> None:
    settings.SAM_MAX_TRAINING_STEPS = 5000
    response = client_for("owner").post(
        f"/api/projects/{project.id}/training-jobs/", {"steps": 100_000}, format="json"
    )
    assert response.status_code == 400
    assert "steps: at most 5000" in response.json()["detail"]


def test_a_proposals_request_past_the_point_quota_is_refused(
    client_for, project, make_image, jobs_stay_queued, settings
) -> None:
    """60 images x 64² points = 245,760 prompts, over the default 200 x 32² = 204,800."""
    images = [make_image(project, width=8, height=6) for _ in range(60)]
    body = {"image_ids": [image.id for image in images], "points_per_side": 64}
    url = f"/api/projects/{project.id}/proposals/"
    response = client_for("annotator").post(url, body, format="json")
    assert response.status_code == 400
    assert "245760 prompts" in response.json()["detail"]
    body["points_per_side"] = 32
    assert client_for("annotator").post(url, body, format="json").status_code == 202
