"""Dataset fixtures: a small project with varied masks, and export helpers."""

import io
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from samapp.choices import JobState
from samapp.ml.masks import mask_to_rle
from samapp.models import ExportJob


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


def ring(height: int, width: int, cx: int, cy: int, outer: int, inner: int) -> np.ndarray:
    return disk(height, width, cx, cy, outer) & ~disk(height, width, cx, cy, inner).astype(bool)


@pytest.fixture
def conformance_project(project: Any, make_image: Callable[..., Any], users: dict[str, Any]) -> Any:
    """The shapes readers get wrong: a ring, a disc in the ring's hole, two-part objects,
    shapes touching the border, a small shape, a ring with an island as one object, a
    portrait image and a file name with spaces."""
    from samapp.services.annotations import annotation_create

    cat, dog = list(project.labels.order_by("id"))
    wide = make_image(project, width=64, height=48, name="ring and disc.png")
    tall = make_image(project, width=30, height=50, name="portrait.png")

    def add(image: Any, mask: np.ndarray, label: Any) -> None:
        annotation_create(
            image=image, author=users["annotator"], rle=mask_to_rle(mask), label=label
        )

    add(wide, ring(48, 64, 24, 22, 14, 7), cat)
    add(wide, disk(48, 64, 24, 22, 4), dog)
    parts = np.zeros((48, 64), np.uint8)
    parts[2:8, 50:60] = 1
    parts |= disk(48, 64, 56, 38, 5)
    add(wide, parts, dog)
    corner = np.zeros((48, 64), np.uint8)
    corner[40:48, 0:12] = 1
    add(wide, corner, cat)
    block = np.zeros((50, 30), np.uint8)
    block[0:10, 20:30] = 1
    add(tall, block, cat)
    small = np.zeros((50, 30), np.uint8)
    small[14:17, 3:7] = 1
    add(tall, small, dog)
    add(tall, ring(50, 30, 14, 28, 10, 6) | disk(50, 30, 14, 28, 2), cat)
    bottom = np.zeros((50, 30), np.uint8)
    bottom[44:50, :] = 1
    add(tall, bottom, dog)
    return project


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def min_iou(mask: np.ndarray) -> float:
    """The issue's bar for polygons: 0.99 per instance, 0.97 under 20 pixels."""
    return 0.99 if mask.sum() >= 20 else 0.97


def unpack(archive: zipfile.ZipFile, folder: Any) -> Any:
    archive.extractall(folder)
    return folder
