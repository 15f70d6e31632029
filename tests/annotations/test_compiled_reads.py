"""The write path's lookups compiled once (`samapp.selectors.compiled`) return what the ORM
returns: the same field values, the same related objects, None where nothing matches, and
one query per call."""

from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from samapp.models import Annotation, Image, Membership
from samapp.selectors.compiled import CompiledQuery
from samapp.selectors.projects import annotation_get, image_get, membership_get


def values(instance: Model) -> dict[str, Any]:
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


def test_membership_get_equals_the_orm_with_its_project(project, users) -> None:
    found = membership_get(project_id=project.pk, user=users["annotator"])
    expected = Membership.objects.select_related("project").get(
        project=project, user=users["annotator"]
    )
    assert found is not None
    assert values(found) == values(expected)
    with CaptureQueriesContext(connection) as queries:
        assert values(found.project) == values(expected.project)  # loaded with it
    assert len(queries) == 0
    assert found.project.settings == expected.project.settings  # JSON decoded
    assert membership_get(project_id=project.pk + 1000, user=users["annotator"]) is None


def test_image_and_annotation_lookups_equal_the_orm(
    project, make_image, make_annotation, users
) -> None:
    image = make_image(project)
    annotation = make_annotation(image, review_state="proposed")
    got_image = image_get(project=project, image_id=image.pk)
    assert got_image is not None
    assert values(got_image) == values(Image.objects.get(pk=image.pk))
    with CaptureQueriesContext(connection) as queries:
        got = annotation_get(project=project, annotation_id=annotation.pk)
        assert got is not None
        assert got.image.height == image.height  # loaded with it
    assert len(queries) == 1
    expected = Annotation.objects.select_related("image").get(pk=annotation.pk)
    assert values(got) == values(expected)
    assert values(got.image) == values(expected.image)


def test_lookups_stay_inside_the_project(project, make_image, make_annotation, users) -> None:
    from samapp.services.projects import project_create

    other = project_create(name="other", created_by=users["owner"], labels=[])
    image = make_image(project)
    annotation = make_annotation(image)
    assert image_get(project=other, image_id=image.pk) is None
    assert annotation_get(project=other, annotation_id=annotation.pk) is None
    assert image_get(project=project, image_id=image.pk + 1000) is None


@pytest.mark.django_db
def test_a_parameter_that_is_not_one_query_parameter_is_refused() -> None:
    unused = CompiledQuery(
        Image,
        lambda image_id, project_id: Image.objects.filter(pk=image_id),
        "image_id",
        "project_id",
    )
    with pytest.raises(ValueError, match="must be one query parameter"):
        unused.get(image_id=1, project_id=1)
