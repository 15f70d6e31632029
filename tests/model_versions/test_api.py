"""Data-engine endpoints: permissions, payloads, CSV."""

from typing import Any

import pytest

from samapp.models import ModelVersion

pytestmark = pytest.mark.django_db


def url(project: Any, suffix: str) -> str:
    return f"/api/projects/{project.pk}/{suffix}"


def test_training_jobs_need_manage_and_membership(
    project, other_project, client_for, shapes_project, monkeypatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("samapp.tasks.training_run_task.delay", queued.append)
    shapes_project(project, 3)
    body = {"steps": 5, "held_out_percent": 30}
    assert client_for("annotator").post(url(project, "training-jobs/"), body).status_code == 403
    assert client_for("outsider").post(url(project, "training-jobs/"), body).status_code == 404
    bad = client_for("manager").post(url(project, "training-jobs/"), {"steps": 0}, format="json")
    assert bad.status_code == 400
    from django.db import transaction

    with transaction.atomic():
        response = client_for("manager").post(url(project, "training-jobs/"), body, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["kind"] == "training"
    assert job["state"] == "queued"
    assert job["model_key"] == f"sam_tiny-p{project.pk}v1"
    again = client_for("manager").post(url(project, "training-jobs/"), body, format="json")
    assert again.status_code == 400
    assert "already running" in again.json()["detail"]
    listing = client_for("viewer").get(url(project, "training-jobs/")).json()["results"]
    assert [j["id"] for j in listing] == [job["id"]]
    detail = client_for("viewer").get(url(project, f"training-jobs/{job['id']}/"))
    assert detail.status_code == 200
    assert (
        client_for("outsider").get(url(project, f"training-jobs/{job['id']}/")).status_code == 404
    )
    versions = client_for("viewer").get(url(project, "model-versions/")).json()
    assert versions["active_model_key"] == "sam_tiny"
    assert [v["state"] for v in versions["results"]] == ["training"]


def test_activate_and_rollback_endpoints(project, client_for) -> None:
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        model_key=f"sam_tiny-p{project.pk}v1",
        base_model_key="sam_tiny",
        parent_model_key="sam_tiny",
        state="ready",
        metrics={"miou_1": 0.5},
        baseline_metrics={"miou_1": 0.6},
        checkpoint_path="x.pt",
    )
    path = url(project, f"model-versions/{version.pk}/activate/")
    assert client_for("annotator").post(path).status_code == 403
    refused = client_for("manager").post(path, {}, format="json")
    assert refused.status_code == 400
    assert "does not beat" in refused.json()["detail"]
    forced = client_for("manager").post(path, {"force": True}, format="json")
    assert forced.status_code == 200
    assert forced.json()["state"] == "active"
    detail = client_for("viewer").get(url(project, f"model-versions/{version.pk}/")).json()
    assert detail["state"] == "active"
    assert detail["metrics"] == {"miou_1": 0.5}
    rollback = client_for("manager").post(url(project, "model-versions/rollback/"))
    assert rollback.status_code == 200
    assert rollback.json() == {"active_model_key": "sam_tiny"}
    assert client_for("reviewer").post(url(project, "model-versions/rollback/")).status_code == 403


def test_analytics_is_for_managers_and_exports_csv(
    project, client_for, make_image, make_annotation, users
) -> None:
    image = make_image(project)
    make_annotation(image, author=users["annotator"], source="click", prompts={"points": [[1, 1]]})
    assert client_for("annotator").get(url(project, "analytics/")).status_code == 403
    rows = client_for("manager").get(url(project, "analytics/")).json()["results"]
    assert [(r["annotator"], r["objects"], r["clicks_per_object"]) for r in rows] == [
        ("annotator", 1, 1.0)
    ]
    response = client_for("manager").get(url(project, "analytics.csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("annotator_id,annotator,label_id,label,objects,objects_per_hour")
    assert len(lines) == 2
    assert ",annotator," in lines[1]


def test_proposals_endpoint_queues_a_run(project, client_for, make_image, monkeypatch) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr("samapp.tasks.proposals_run_task.delay", lambda *a: calls.append(a))
    image = make_image(project)
    assert client_for("viewer").post(url(project, "proposals/"), {}).status_code == 403
    from django.db import transaction

    with transaction.atomic():
        response = client_for("annotator").post(
            url(project, "proposals/"), {"image_ids": [image.pk], "max_overlap": 0.3}, format="json"
        )
    assert response.status_code == 202, response.content
    assert response.json()["images"] == [image.pk]
    none = client_for("annotator").post(
        url(project, "proposals/"), {"image_ids": [999999]}, format="json"
    )
    assert none.status_code == 400
