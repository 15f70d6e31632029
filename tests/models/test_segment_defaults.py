"""Segment everything per model: registry defaults under the request and project settings,
predicted IoU clipped to [0, 1], and a job's result told truthfully."""

import pytest

from samapp.choices import AnnotationSource, JobState
from samapp.ml.registry import automatic_defaults
from samapp.models import SegmentJob
from samapp.services.annotations import annotation_create
from samapp.services.segment import segment_job_payload, segment_options


def _options_for(project, model_key, settings=None, options=None):
    project.default_model_key = model_key
    project.settings = settings or {}
    return segment_options(project=project, options=options or {})


def test_unset_options_follow_the_projects_model(project):
    tiny = automatic_defaults("sam_tiny")
    assert _options_for(project, "sam_tiny") == tiny
    # A fine-tuned version uses its base model's defaults.
    assert _options_for(project, "sam_tiny-p3v2") == tiny
    vit = _options_for(project, "sam_vit_b")
    assert vit["pred_iou_thresh"] == 0.88
    assert tiny["pred_iou_thresh"] < 0.88


@pytest.mark.xfail(
    strict=True, reason="sam_tiny's masks limit segment everything: 53 % of the demo shapes"
)
def test_segment_everything_with_the_defaults_finds_most_demo_shapes():
    """Issue target: >= 80 % of the demo scenes' shapes found at IoU >= 0.8 by a kept mask."""
    from samapp.management.commands.sam_demo import DEMO_SEED
    from samapp.ml.evaluation import evaluate_automatic
    from samapp.ml.family_ops import automatic_masks
    from samapp.ml.registry import load_model

    model = load_model("sam_tiny")
    options = automatic_defaults("sam_tiny")
    result = evaluate_automatic(
        lambda image: automatic_masks(model, image, None, **options), scenes=4, seed=DEMO_SEED
    )
    assert result.found / result.shapes >= 0.8


def test_project_settings_and_the_request_override_the_defaults(project):
    resolved = _options_for(
        project,
        "sam_tiny",
        settings={"auto_pred_iou_thresh": 0.7, "auto_points_per_side": 8},
        options={"pred_iou_thresh": 0.2},
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
def test_a_jobs_predicted_iou_is_stored_clipped(project, make_image, rle_box, sent, stored):
    """Server-side writes (segment everything, proposals) store the IoU head's score
    clipped: the head is an unbounded regression."""
    image = make_image(project, width=20, height=10)
    annotation = annotation_create(
        image=image,
        author=None,
        rle=rle_box(10, 20, (2, 2, 8, 8)),
        predicted_iou=sent,
        source=AnnotationSource.AUTOMATIC,
    )
    assert annotation.predicted_iou == stored


@pytest.mark.parametrize(("sent", "status"), [(1.02, 400), (-0.1, 400), (0.5, 201)])
def test_a_members_predicted_iou_must_be_a_score(
    client_for, project, make_image, rle_box, sent, status
):
    """A member's claim is checked, not clipped (the browser clips what it shows)."""
    image = make_image(project, width=20, height=10)
    response = client_for("annotator").post(
        f"/api/projects/{project.pk}/images/{image.pk}/annotations/",
        {"rle": rle_box(10, 20, (2, 2, 8, 8)), "predicted_iou": sent, "source": "click"},
        format="json",
    )
    assert response.status_code == status, response.content
    if status == 201:
        assert response.json()["predicted_iou"] == sent


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
