"""YOLO-seg, PNG masks and Pascal VOC outputs against their format rules."""

import io
import json
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

from samapp.ml.masks import centre_polygons_to_mask, rle_to_mask
from samapp.models import Annotation
from tests.datasets.conftest import export_zip, run_export

pytestmark = pytest.mark.django_db


def _yolo_check(archive: Any, names: list[str]) -> dict[str, list[list[float]]]:
    """The ultralytics rules (utils/data verify_image_label): class int in range, coordinates
    normalized into [0, 1], segments of >= 3 points; data.yaml with names, train and val."""
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["names"] == dict(enumerate(names))
    assert data["nc"] == len(names)
    assert {"train", "val"} <= set(data)
    labels: dict[str, list[list[float]]] = {}
    for name in archive.namelist():
        if not name.startswith("labels/"):
            continue
        assert name.endswith(".txt")
        rows = []
        for line in archive.read(name).decode().splitlines():
            tokens = line.split()
            assert tokens[0].isdigit()
            assert 0 <= int(tokens[0]) < len(names)
            coords = [float(t) for t in tokens[1:]]
            assert len(coords) >= 6
            assert len(coords) % 2 == 0
            assert all(0.0 <= c <= 1.0 for c in coords)
            rows.append([int(tokens[0]), *coords])
        labels[name] = rows
    return labels


def test_yolo_layout_and_rules(dataset_project: Any) -> None:
    archive = export_zip(dataset_project, "yolo", {"tolerance": 0})
    labels = _yolo_check(archive, ["cat", "dog"])
    assert sorted(labels) == [
        "labels/train/empty.txt",
        "labels/train/first.txt",
        "labels/train/second.txt",
    ]
    assert {n for n in archive.namelist() if n.startswith("images/")} == {
        "images/train/first.png",
        "images/train/second.png",
        "images/train/empty.png",
    }
    assert labels["labels/train/empty.txt"] == []
    first = labels["labels/train/first.txt"]
    assert [row[0] for row in first] == [0, 1]  # donut: cat, two parts merged: dog
    # the two-part mask is one polygon covering both parts, painted as polygon2mask paints it
    points = np.asarray(first[1][1:]).reshape(-1, 2) * [32, 24]
    painted = centre_polygons_to_mask([points.reshape(-1)], 24, 32)
    dog = rle_to_mask(Annotation.objects.filter(label__name="dog").order_by("id")[0].rle)
    assert (painted & dog).sum() == dog.sum()  # both parts, whole
    assert 0 < (painted & ~dog).sum() < 20  # plus the one-pixel bridge between them
    # the donut keeps its hole: one polygon bridged into it, cut out by even-odd filling
    donut = rle_to_mask(Annotation.objects.order_by("id")[0].rle)
    outline = np.asarray(first[0][1:]).reshape(-1, 2) * [32, 24]
    assert np.array_equal(centre_polygons_to_mask([outline.reshape(-1)], 24, 32), donut)


def test_yolo_split_is_stable_and_complete(project: Any, make_image: Any) -> None:
    for _ in range(20):
        make_image(project, width=16, height=16)
    archive = export_zip(project, "yolo", {"val_split": 0.5})
    train = {n for n in archive.namelist() if n.startswith("images/train/")}
    val = {n for n in archive.namelist() if n.startswith("images/val/")}
    assert train
    assert val
    assert len(train) + len(val) == 20
    assert yaml.safe_load(archive.read("data.yaml"))["val"] == "images/val"
    again = export_zip(project, "yolo", {"val_split": 0.5})
    assert {n for n in again.namelist() if n.startswith("images/val/")} == val


def _png(archive: Any, name: str) -> PILImage.Image:
    return PILImage.open(io.BytesIO(archive.read(name)))


def test_png_masks_palette_and_label_map(dataset_project: Any) -> None:
    archive = export_zip(dataset_project, "png")
    label_map = json.loads(archive.read("labelmap.json"))
    assert [(e["index"], e["name"], e["color"]) for e in label_map] == [
        (0, "background", [0, 0, 0]),
        (1, "cat", [255, 0, 0]),
        (2, "dog", [0, 255, 0]),
    ]
    assert archive.read("labelmap.txt").decode().splitlines()[1:] == [
        "background:0,0,0::",
        "cat:255,0,0::",
        "dog:0,255,0::",
    ]
    semantic = _png(archive, "masks/first.png")
    assert semantic.mode == "P"
    assert semantic.getpalette()[:9] == [0, 0, 0, 255, 0, 0, 0, 255, 0]
    classes = np.asarray(semantic)
    first = list(Annotation.objects.filter(image__original_name="first.png").order_by("id"))
    donut, parts = (rle_to_mask(a.rle) for a in first)
    # they overlap: the smaller (two parts) is painted over the larger (donut)
    assert (classes[donut & ~parts] == 1).all()
    assert (classes[parts] == 2).all()
    assert (classes[~(donut | parts)] == 0).all()
    instance = _png(archive, "instance_masks/first.png")
    assert instance.mode == "P"
    ids = np.asarray(instance)
    rows = [json.loads(line) for line in archive.read("instances.jsonl").decode().splitlines()]
    assert rows[0]["file_name"] == "first.png"
    by_id = {entry["id"]: entry["label"] for entry in rows[0]["instances"]}
    assert by_id[int(ids[donut & ~parts][0])] == "cat"
    assert by_id[int(ids[parts][0])] == "dog"
    assert len(np.unique(ids)) == 3
    assert np.asarray(_png(archive, "masks/empty.png")).max() == 0
    meta = json.loads(archive.read("dataset_meta.json"))
    assert meta["label_map"] == {"0": "background", "1": "cat", "2": "dog"}
    assert meta["segmentation_colors"] == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]


def test_png_paints_small_objects_over_large_ones(
    project: Any, make_image: Any, make_annotation: Any
) -> None:
    cat, dog = list(project.labels.order_by("id"))
    image = make_image(project, width=20, height=20)
    make_annotation(image, label=dog, box=(5, 5, 8, 8))  # small, first
    make_annotation(image, label=cat, box=(0, 0, 20, 20))  # large, later
    classes = np.asarray(_png(export_zip(project, "png"), f"masks/{image.original_name[:-4]}.png"))
    assert classes[6, 6] == 2
    assert classes[0, 0] == 1


def test_voc_layout(dataset_project: Any) -> None:
    archive = export_zip(dataset_project, "voc", {"val_split": 0.0})
    names = set(archive.namelist())
    for stem in ("first", "second", "empty"):
        assert {
            f"JPEGImages/{stem}.jpg",
            f"SegmentationClass/{stem}.png",
            f"SegmentationObject/{stem}.png",
        } <= names
        jpeg = _png(archive, f"JPEGImages/{stem}.jpg")
        assert jpeg.format == "JPEG"
        assert jpeg.size == (32, 24)
    assert archive.read("ImageSets/Segmentation/train.txt").decode().split() == [
        "first",
        "second",
        "empty",
    ]
    assert archive.read("ImageSets/Segmentation/val.txt") == b""
    assert "ImageSets/Segmentation/trainval.txt" not in names  # each image in one list
    klass = _png(archive, "SegmentationClass/second.png")
    assert klass.mode == "P"
    palette = klass.getpalette()
    assert palette[3:6] == [255, 0, 0]
    assert palette[255 * 3 : 256 * 3] == [224, 224, 192]
    disk = rle_to_mask(
        Annotation.objects.filter(image__original_name="second.png").order_by("id")[0].rle
    )
    values = np.asarray(klass)
    assert (values[disk] == 1).all()
    assert (values[~disk] == 0).all()
    objects = np.asarray(_png(archive, "SegmentationObject/second.png"))
    assert set(np.unique(objects)) == {0, 1}
    assert "labelmap.txt" in names


def test_too_many_labels_for_a_palette_fails_the_job_cleanly(project: Any, make_image: Any) -> None:
    from samapp.services.datasets.exports import export_job_create, export_job_run
    from samapp.services.projects import label_create

    for n in range(260):
        label_create(project=project, name=f"l{n}")
    make_image(project)
    job = export_job_create(project=project, created_by=None, format="voc")
    export_job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.state == "failed"
    assert "palette" in job.error
    assert run_export(project, "coco").state == "done"
