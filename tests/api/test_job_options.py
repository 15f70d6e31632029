"""The options of the jobs members start, as the pages read them: the bounds the API
enforces and the project's defaults."""

from typing import Any

import pytest

from samapp.ml.registry import automatic_defaults
from samapp.services.job_limits import PROJECT_SETTINGS
from samapp.services.projects import project_update


def url(project: Any) -> str:
    return f"/api/projects/{project.id}/job-options/"


def test_bounds_are_the_ones_the_segment_endpoint_enforces(client_for, project, make_image):
    body = client_for("annotator").get(url(project)).json()
    threshold = body["segment"]["pred_iou_thresh"]
    bound = PROJECT_SETTINGS["auto_pred_iou_thresh"]
    assert threshold["kind"] == "float"
    assert (threshold["min"], threshold["max"]) == (bound.low, bound.high)
    points = body["segment"]["points_per_side"]
    assert points["kind"] == "int"
    assert points["max"] == PROJECT_SETTINGS["auto_points_per_side"].high
    # One past the advertised bound is what the job endpoint refuses.
    image = make_image(project)
    response = client_for("annotator").post(
        f"/api/projects/{project.id}/images/{image.id}/segment-everything/",
        {"points_per_side": int(points["max"]) + 1},
        format="json",
    )
    assert response.status_code == 400
    assert "points_per_side" in response.json()["errors"]


def test_defaults_come_from_the_model_then_the_project_settings(client_for, project, users):
    model = automatic_defaults(project.default_model_key)
    body = client_for("viewer").get(url(project)).json()
    assert body["segment"]["pred_iou_thresh"]["default"] == pytest.approx(model["pred_iou_thresh"])
    assert body["export"]["tolerance"]["default"] == pytest.approx(1.0)
    project_update(
        project=project,
        data={"settings": {"auto_pred_iou_thresh": 0.5, "export_polygon_tolerance": 2.5}},
    )
    body = client_for("viewer").get(url(project)).json()
    assert body["segment"]["pred_iou_thresh"]["default"] == pytest.approx(0.5)
    assert body["export"]["tolerance"]["default"] == pytest.approx(2.5)


@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("anonymous", 403)])
def test_outsiders_see_nothing(client_for, project, who, status):
    assert client_for(who).get(url(project)).status_code == status
