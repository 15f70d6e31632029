"""Reads for dataset exports: the filtered subset of a project's images and annotations.

Filters (all optional, combined with AND):
  status          image statuses to keep (ImageStatus values)
  images          image ids to keep
  labels          label ids: annotations with other labels (or none) are left out
  review_states   review states to keep; default: proposed and accepted (rejected left out)
  only_annotated  keep only images with at least one annotation left after the filters above

Every read is scoped to the project; images are streamed in id order, a chunk at a time, with
the annotations of each chunk fetched in one query, so memory does not grow with the project.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Exists, Model, OuterRef, QuerySet

from samapp.choices import ReviewState
from samapp.models import Annotation, ExportJob, Image, Label, Project

M = TypeVar("M", bound=Model)

DEFAULT_REVIEW_STATES = (ReviewState.PROPOSED.value, ReviewState.ACCEPTED.value)


@dataclass(frozen=True)
class DatasetFilters:
    status: tuple[str, ...] = ()
    images: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()
    review_states: tuple[str, ...] = DEFAULT_REVIEW_STATES
    only_annotated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": list(self.status),
            "images": list(self.images),
            "labels": list(self.labels),
            "review_states": list(self.review_states),
            "only_annotated": self.only_annotated,
        }


@dataclass
class DatasetItem:
    image: Image
    annotations: list[Annotation] = field(default_factory=list)


def dataset_labels(*, project: Project, filters: DatasetFilters) -> list[Label]:
    """The project's labels in id order (the category order of every export)."""
    labels = _narrowed(Label.objects.filter(project=project), id__in=filters.labels)
    return list(labels.order_by("id"))


def _narrowed(queryset: QuerySet[M], **lookups: Any) -> QuerySet[M]:
    """``queryset`` filtered by each lookup that has a value: an empty filter selects all."""
    return queryset.filter(**{lookup: value for lookup, value in lookups.items() if value})


def _annotations(*, project: Project, filters: DatasetFilters) -> QuerySet[Annotation]:
    return _narrowed(
        Annotation.objects.filter(image__project=project),
        label_id__in=filters.labels,
        review_state__in=filters.review_states,
    )


def dataset_images(*, project: Project, filters: DatasetFilters) -> QuerySet[Image]:
    images = _narrowed(
        Image.objects.filter(project=project),
        status__in=filters.status,
        id__in=filters.images,
    )
    if filters.only_annotated:
        kept = _annotations(project=project, filters=filters).filter(image_id=OuterRef("pk"))
        images = images.filter(Exists(kept))
    return images.order_by("id")


def dataset_count(*, project: Project, filters: DatasetFilters) -> int:
    return dataset_images(project=project, filters=filters).count()


def dataset_iter(
    *, project: Project, filters: DatasetFilters, chunk_size: int = 200
) -> Iterator[DatasetItem]:
    """Each image of the subset with its kept annotations (id order), chunk by chunk."""
    chunk: list[Image] = []
    images = dataset_images(project=project, filters=filters)
    for image in images.iterator(chunk_size=chunk_size):
        chunk.append(image)
        if len(chunk) >= chunk_size:
            yield from _with_annotations(project=project, filters=filters, images=chunk)
            chunk = []
    if chunk:
        yield from _with_annotations(project=project, filters=filters, images=chunk)


def _with_annotations(
    *, project: Project, filters: DatasetFilters, images: list[Image]
) -> Iterator[DatasetItem]:
    items = {image.id: DatasetItem(image=image) for image in images}
    annotations = (
        _annotations(project=project, filters=filters)
        .filter(image_id__in=list(items))
        .only("id", "image_id", "label_id", "rle", "bbox", "area")
        .order_by("image_id", "id")
    )
    for annotation in annotations:
        items[annotation.image_id].annotations.append(annotation)
    yield from items.values()


def export_job_list(*, project: Project) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(project=project).order_by("-created_at", "-id")
