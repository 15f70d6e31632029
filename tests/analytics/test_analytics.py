"""Annotation analytics per annotator and label, and its CSV export."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from samapp.models import Annotation
from samapp.selectors.analytics import annotation_analytics
from samapp.services.analytics import analytics_csv_export

pytestmark = pytest.mark.django_db


def test_rates_clicks_and_unchanged_share(project, users, make_image, make_annotation) -> None:
    cat, dog = project.labels.get(name="cat"), project.labels.get(name="dog")
    image = make_image(project, width=32, height=32)
    start = timezone.now() - timedelta(hours=1)
    plan = [  # (author, label, seconds from start, source, prompts, predicted_iou, review)
        ("annotator", cat, 0, "click", {"points": [[1, 1]], "labels": [1]}, 0.9, "accepted"),
        ("annotator", cat, 20, "click", {"points": [[1, 1], [2, 2], [3, 3]]}, None, "accepted"),
        ("annotator", dog, 50, "box", {"points": [], "box": [0, 0, 4, 4]}, 0.8, "accepted"),
        ("annotator", dog, 2000, "manual", {}, None, "accepted"),  # after a break: untimed
        ("annotator", cat, 2010, "click", {"points": [[1, 1]]}, 0.9, "rejected"),  # ignored
        ("extra", cat, 0, "click", {"points": [[1, 1]]}, 0.9, "accepted"),
        ("extra", cat, 30, "automatic", {"points": [[1, 1]]}, 0.9, "proposed"),  # not human
    ]
    for author, label, seconds, source, prompts, iou, review in plan:
        annotation = make_annotation(
            image,
            label=label,
            author=users[author],
            source=source,
            prompts=prompts,
            predicted_iou=iou,
            review_state=review,
        )
        Annotation.objects.filter(pk=annotation.pk).update(
            created_at=start + timedelta(seconds=seconds)
        )
    rows = {(r["annotator"], r["label"]): r for r in annotation_analytics(project=project)}
    assert set(rows) == {("annotator", "cat"), ("annotator", "dog"), ("extra", "cat")}
    a_cat = rows[("annotator", "cat")]
    assert a_cat["objects"] == 2
    assert a_cat["timed_objects"] == 1
    assert a_cat["seconds_per_object"] == 20.0
    assert a_cat["objects_per_hour"] == 180.0
    assert a_cat["clicks_per_object"] == 2.0  # (1 + 3) / 2
    assert a_cat["accepted_unchanged_share"] == 0.5  # the second one was edited
    a_dog = rows[("annotator", "dog")]
    assert a_dog["objects"] == 2
    assert a_dog["seconds_per_object"] == 30.0
    assert a_dog["clicks_per_object"] == 0.5
    assert a_dog["accepted_unchanged_share"] == 0.5
    e_cat = rows[("extra", "cat")]
    assert e_cat["objects"] == 1
    assert e_cat["seconds_per_object"] is None
    assert e_cat["objects_per_hour"] is None

    table = list(csv.DictReader(io.StringIO(analytics_csv_export(project=project))))
    assert [(r["annotator"], r["label"], r["objects"]) for r in table] == [
        ("annotator", "cat", "2"),
        ("annotator", "dog", "2"),
        ("extra", "cat", "1"),
    ]
    assert table[2]["seconds_per_object"] == ""


def test_csv_cells_cannot_become_formulas(project, users, make_image, make_annotation) -> None:
    users["annotator"].username = "=HYPERLINK(1)"
    users["annotator"].save()
    make_annotation(make_image(project), author=users["annotator"], source="click")
    assert "'=HYPERLINK(1)" in analytics_csv_export(project=project)
