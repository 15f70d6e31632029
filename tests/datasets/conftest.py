"""Dataset fixtures: a small project with varied masks, and export helpers."""

import io
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from samapp.ml.masks import mask_to_rle
from samapp.models import ExportJob, JobState


def donut(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[2:14, 3:17] = 1
    mask[5:10, 7:12] = 0
    return mask


def two_parts(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[1:5, 1:6] = 1
    mask[15:22, 20:30] = 1
    return mask


def disk(height: int, width: int, cx: int = 20, cy: int = 12, r: int = 7) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.uint8)


@pytest.fixture
def dataset_project(project: Any, make_image: Callable[..., Any], users: dict[str, Any]) -> Any:
    """Three 32x24 images: a donut (cat) and two-part mask (dog); a disk (cat) and a rejected
    box; nothing (a negative image). Plus one unlabeled annotation."""
    from samapp.services.annotations import annotation_create

    cat, dog = list(project.labels.order_by("id"))
    first = make_image(project, width=32, height=24, name="first.png")
    second = make_image(project, width=32, height=24, name="second.png", status="done")
    make_image(project, width=32, height=24, name="empty.png")

    def add(image: Any, mask: np.ndarray, label: Any, **fields: Any) -> Any:
        return annotation_create(
            image=image, author=users["annotator"], rle=mask_to_rle(mask), label=label, **fields
        )

    add(first, donut(24, 32), cat)
    add(first, two_parts(24, 32), dog)
    add(second, disk(24, 32), cat)
    box = np.zeros((24, 32), dtype=np.uint8)
    box[0:4, 0:4] = 1
    add(second, box, dog, review_state="rejected")
    add(second, box, None)
    return project


def run_export(project: Any, format: str, options: dict[str, Any] | None = None) -> ExportJob:
    from samapp.services.datasets.exports import export_job_create, export_job_run

    job = export_job_create(project=project, created_by=None, format=format, options=options)
    export_job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    return job


def export_zip(project: Any, format: str, options: dict[str, Any] | None = None) -> zipfile.ZipFile:
    job = run_export(project, format, options)
    with job.result_file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))
