"""Segment everything per model: registry defaults under the request and project settings,
predicted IoU clipped to [0, 1], and a job's result told truthfully."""

import pytest

from samapp.ml.registry import automatic_defaults
from samapp.models import JobState, SegmentJob
from samapp.services.segment import segment_job_payload, segment_options


def test_unset_options_follow_the_projects_model():
    tiny = automatic_defaults("sam_tiny")
    assert segment_options(project_settings={}, options={}, model_key="sam_tiny") == tiny
    # A fine-tuned version uses its base model's defaults.
    assert segment_options(project_settings={}, options={}, model_key="sam_tiny-p3v2") == tiny
    vit = segment_options(project_settings={}, options={}, model_key="sam_vit_b")
    assert vit["pred_iou_thresh"] == 0.88 and tiny["pred_iou_thresh"] < 0.88


def test_project_settings_and_the_request_override_the_defaults():
    resolved = segment_options(
        project_settings={"auto_pred_iou_thresh": 0.7, "auto_points_per_side": 8},
        options={"pred_iou_thresh": 0.2},
        model_key="sam_tiny",
    )
    assert resolved["pred_iou_thresh"] == 0.2
    assert resolved["points_per_side"] == 8
    assert (
        resolved["stability_score_thresh"]
        == automatic_defaults("sam_tiny")["stability_score_thresh"]
    )


def test_new_projects_leave_the_thresholds_to_the_model(project):
    assert "auto_pred_iou_thresh" not in project.settings
    assert "auto_stability_score_thresh" not in project.settings


@pytest.mark.parametrize(("sent", "stored"), [(1.02, 1.0), (-0.1, 0.0), (0.5, 0.5), (None, None)])
def test_predicted_iou_is_stored_clipped(client_for, project, make_image, rle_box, sent, stored):
    image = make_image(project, width=20, height=10)
    response = client_for("annotator").post(
        f"/api/projects/{project.pk}/images/{image.pk}/annotations/",
        {"rle": rle_box(10, 20, (2, 2, 8, 8)), "predicted_iou": sent},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["predicted_iou"] == stored


def test_a_job_that_kept_nothing_says_so(project, make_image):
    job = SegmentJob.objects.create(
        project=project,
        image=make_image(project),
        model_key="sam_tiny",
        options={"pred_iou_thresh": 0.88},
        state=JobState.DONE,
        annotation_count=0,
    )
    summary = segment_job_payload(job)["summary"]
    assert summary == "0 masks kept — try a lower predicted-IoU threshold (now 0.88)."
    job.annotation_count = 3
    assert segment_job_payload(job)["summary"] == "3 masks kept, waiting for review."
    job.state = JobState.RUNNING
    assert segment_job_payload(job)["summary"] == ""
