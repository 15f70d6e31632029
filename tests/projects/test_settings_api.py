"""Project settings over REST: label counts, deleting a used label, archive, settings bounds,
deletion; each write allowed to owners and managers only."""

from typing import Any

import pytest

from samapp.models import Annotation, AnnotationEvent, Label, Project
from samapp.services.job_limits import PROJECT_SETTINGS


def _labels(project: Project) -> dict[str, Label]:
    return {label.name: label for label in project.labels.all()}


@pytest.fixture
def used_labels(project, make_image, make_annotation) -> dict[str, Label]:
    """cat carries two annotations, dog one."""
    labels = _labels(project)
    image = make_image(project)
    make_annotation(image, label=labels["cat"])
    make_annotation(image, label=labels["cat"], box=(2, 2, 5, 5))
    make_annotation(image, label=labels["dog"])
    return labels


def test_create_reports_a_repeated_label_name_at_its_row(client_for) -> None:
    body = {"name": "Cells", "labels": [{"name": "cell"}, {"name": "wall"}, {"name": " cell "}]}
    response = client_for("outsider").post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "labels": [{}, {}, {"name": ["Another label is named 'cell'."]}]
    }
    assert not Project.objects.filter(name="Cells").exists()


def test_label_list_counts_annotations_per_label(client_for, project, used_labels) -> None:
    response = client_for("viewer").get(f"/api/projects/{project.id}/labels/")
    assert response.status_code == 200
    counts = {row["name"]: row["annotation_count"] for row in response.json()["results"]}
    assert counts == {"cat": 2, "dog": 1}


def test_deleting_an_unused_label_needs_no_choice(client_for, project) -> None:
    label = _labels(project)["dog"]
    response = client_for("manager").delete(f"/api/projects/{project.id}/labels/{label.id}/")
    assert response.status_code == 204
    assert not Label.objects.filter(pk=label.id).exists()


def test_deleting_a_used_label_without_a_choice_is_refused_with_the_count(
    client_for, project, used_labels
) -> None:
    cat = used_labels["cat"]
    response = client_for("owner").delete(f"/api/projects/{project.id}/labels/{cat.id}/")
    assert response.status_code == 409
    body = response.json()
    assert body["annotation_count"] == 2
    assert "reassign" in body["detail"]
    assert Label.objects.filter(pk=cat.id).exists()


def test_deleting_a_used_label_can_reassign_its_annotations(
    client_for, project, used_labels
) -> None:
    cat, dog = used_labels["cat"], used_labels["dog"]
    moved = list(Annotation.objects.filter(label=cat).order_by("pk"))
    seq_before = AnnotationEvent.objects.filter(project=project).count()
    response = client_for("manager").delete(
        f"/api/projects/{project.id}/labels/{cat.id}/?annotations=reassign&reassign_to={dog.id}"
    )
    assert response.status_code == 204, response.json()
    assert not Label.objects.filter(pk=cat.id).exists()
    for before in moved:
        after = Annotation.objects.get(pk=before.pk)
        assert (after.label_id, after.version) == (dog.id, before.version + 1)
    events = AnnotationEvent.objects.filter(project=project).order_by("seq")[seq_before:]
    assert [(e.event, e.payload["id"], e.payload["label"]) for e in events] == [
        ("annotation.updated", a.pk, dog.id) for a in moved
    ]


def test_deleting_a_used_label_can_delete_its_annotations(client_for, project, used_labels) -> None:
    cat = used_labels["cat"]
    doomed = sorted(Annotation.objects.filter(label=cat).values_list("pk", flat=True))
    response = client_for("owner").delete(
        f"/api/projects/{project.id}/labels/{cat.id}/?annotations=delete"
    )
    assert response.status_code == 204
    assert not Annotation.objects.filter(pk__in=doomed).exists()
    assert Annotation.objects.filter(label=used_labels["dog"]).count() == 1
    deleted = AnnotationEvent.objects.filter(project=project, event="annotation.deleted")
    assert sorted(e.payload["id"] for e in deleted) == doomed


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("annotations=reassign", "Choose the label"),
        ("annotations=move", "annotations"),
        ("annotations=reassign&reassign_to=SELF", "another label"),
        ("annotations=reassign&reassign_to=99999", "no label 99999"),
        ("annotations=reassign&reassign_to=OTHER", "no label"),
        ("annotations=reassign&reassign_to=-3", "reassign_to"),
    ],
)
def test_label_delete_choices_are_checked(
    client_for, project, other_project, used_labels, query: str, message: str
) -> None:
    cat = used_labels["cat"]
    other = other_project.labels.get()
    query = query.replace("SELF", str(cat.id)).replace("OTHER", str(other.id))
    response = client_for("owner").delete(f"/api/projects/{project.id}/labels/{cat.id}/?{query}")
    assert response.status_code == 400
    assert message in str(response.json())
    assert Annotation.objects.filter(label=cat).count() == 2


@pytest.mark.parametrize("role", ["annotator", "reviewer", "viewer", "outsider"])
def test_only_managers_and_owners_delete_labels(
    client_for, project, used_labels, role: str
) -> None:
    cat = used_labels["cat"]
    response = client_for(role).delete(
        f"/api/projects/{project.id}/labels/{cat.id}/?annotations=delete"
    )
    assert response.status_code in (403, 404)
    assert Annotation.objects.filter(label=cat).count() == 2


def test_archive_and_unarchive(client_for, project) -> None:
    client = client_for("manager")
    archived = client.patch(f"/api/projects/{project.id}/", {"archived": True}, format="json")
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    listed = client.get("/api/projects/").json()["results"]
    assert [p["archived_at"] is not None for p in listed if p["id"] == project.id] == [True]
    active = client.patch(f"/api/projects/{project.id}/", {"archived": False}, format="json")
    assert active.json()["archived_at"] is None


@pytest.mark.parametrize("role", ["annotator", "reviewer", "viewer"])
def test_only_managers_and_owners_archive(client_for, project, role: str) -> None:
    response = client_for(role).patch(
        f"/api/projects/{project.id}/", {"archived": True}, format="json"
    )
    assert response.status_code == 403
    project.refresh_from_db()
    assert project.archived_at is None


def test_rename_to_blank_is_refused(client_for, project) -> None:
    response = client_for("owner").patch(
        f"/api/projects/{project.id}/", {"name": "   "}, format="json"
    )
    assert response.status_code == 400
    assert "name" in str(response.json())


def test_detail_gives_the_settings_bounds_that_patch_enforces(client_for, project) -> None:
    client = client_for("owner")
    bounds: dict[str, Any] = client.get(f"/api/projects/{project.id}/").json()["settings_bounds"]
    assert set(bounds) == set(PROJECT_SETTINGS)
    points = bounds["auto_points_per_side"]
    assert points["type"] == "integer"
    url = f"/api/projects/{project.id}/"
    ok = client.patch(url, {"settings": {"auto_points_per_side": points["maximum"]}}, format="json")
    assert ok.status_code == 200
    over = {"settings": {"auto_points_per_side": int(points["maximum"]) + 1}}
    assert client.patch(url, over, format="json").status_code == 400
    iou = bounds["auto_pred_iou_thresh"]
    assert (iou["type"], iou["minimum"], iou["maximum"]) == ("number", 0.0, 1.0)


def test_only_owners_delete_the_project(client_for, project) -> None:
    assert client_for("manager").delete(f"/api/projects/{project.id}/").status_code == 403
    assert Project.objects.filter(pk=project.id).exists()
    assert client_for("owner").delete(f"/api/projects/{project.id}/").status_code == 204
    assert not Project.objects.filter(pk=project.id).exists()


def test_an_archived_project_takes_no_new_work_until_unarchived(
    client_for, project, make_image, make_annotation, png_bytes
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import rle_box

    image = make_image(project)
    existing = make_annotation(image)
    manager = client_for("manager")
    base = f"/api/projects/{project.id}"
    assert manager.patch(f"{base}/", {"archived": True}, format="json").status_code == 200

    def attempts() -> dict[str, Any]:
        upload = SimpleUploadedFile(
            "new.png", png_bytes(color=(9, 200, 30)), content_type="image/png"
        )
        return {
            "annotate": manager.post(
                f"{base}/images/{image.id}/annotations/",
                {"rle": rle_box(image.height, image.width)},
                format="json",
            ),
            "review": manager.post(
                f"{base}/annotations/review/",
                {"ids": [existing.id], "review_state": "rejected", "reason": "too loose"},
                format="json",
            ),
            "upload": manager.post(f"{base}/images/", {"file": [upload]}, format="multipart"),
            "segment": manager.post(
                f"{base}/images/{image.id}/segment-everything/", {}, format="json"
            ),
        }

    refused = attempts()
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 409)
    assert all("archived" in r.json()["detail"] for r in refused.values())
    assert project.images.count() == 1
    assert image.annotations.count() == 1
    # Its work stays readable while archived.
    assert manager.get(f"{base}/images/{image.id}/annotations/").status_code == 200

    assert manager.patch(f"{base}/", {"archived": False}, format="json").status_code == 200
    assert attempts()["annotate"].status_code == 201
