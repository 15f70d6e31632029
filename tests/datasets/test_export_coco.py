import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO

from samapp.ml.masks import mask_to_rle, polygons_to_mask, rle_to_mask
from samapp.models import Annotation, Image
from samapp.services.datasets.common import ExportOptions
from samapp.services.datasets.export_coco import coco_segmentation
from samapp.services.datasets.importers import dataset_import
from samapp.services.projects import project_create
from tests.datasets.conftest import disk, export_zip

pytestmark = pytest.mark.django_db

TRAIN = "annotations/instances_train.json"


def _coco_from_zip(archive: zipfile.ZipFile, tmp_path: Path) -> COCO:
    path = tmp_path / "instances_train.json"
    path.write_bytes(archive.read(TRAIN))
    return COCO(str(path))


@pytest.mark.parametrize("mask_format", ["rle", "polygons"])
def test_coco_loads_in_pycocotools_and_masks_match(
    dataset_project: Any, tmp_path: Path, mask_format: str
) -> None:
    archive = export_zip(dataset_project, "coco", {"mask_format": mask_format, "tolerance": 0})
    coco = _coco_from_zip(archive, tmp_path)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    images = coco.loadImgs(coco.getImgIds())
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [
        ("first.png", 32, 24),
        ("second.png", 32, 24),
        ("empty.png", 32, 24),
    ]
    for image in images:
        assert archive.read("images/train/" + image["file_name"])[:8] == b"\x89PNG\r\n\x1a\n"
    ours = list(
        Annotation.objects.filter(label__isnull=False)
        .exclude(review_state="rejected")
        .order_by("image_id", "id")
    )
    theirs = coco.loadAnns(coco.getAnnIds())
    assert len(theirs) == len(ours) == 3  # rejected and unlabeled ones are left out
    for ann, annotation in zip(theirs, ours, strict=True):
        expected = rle_to_mask(annotation.rle)
        assert np.array_equal(coco.annToMask(ann).astype(bool), expected)  # pixel for pixel
        assert ann["area"] == annotation.area
        assert ann["bbox"] == annotation.bbox
        assert ann["iscrowd"] == 0
    segmentations = [ann["segmentation"] for ann in theirs]
    if mask_format == "polygons":
        # The donut's hole cannot be cut by a COCO ring: it stays RLE; the others are rings.
        assert set(segmentations[0]) == {"size", "counts"}
        assert all(isinstance(s, list) for s in segmentations[1:])
        assert all(len(ring) >= 6 and len(ring) % 2 == 0 for s in segmentations[1:] for ring in s)
    else:
        assert all(set(s) == {"size", "counts"} for s in segmentations)


def test_coco_holes_fill_option_writes_the_outline(dataset_project: Any) -> None:
    archive = export_zip(
        dataset_project, "coco", {"mask_format": "polygons", "tolerance": 0, "holes": "fill"}
    )
    document = json.loads(archive.read(TRAIN))
    donut_rings = document["annotations"][0]["segmentation"]
    assert len(donut_rings) == 1  # the exterior only: the hole is filled (the stated loss)
    filled = rle_to_mask(Annotation.objects.order_by("id").first().rle).copy()
    filled[5:10, 7:12] = True
    assert np.array_equal(polygons_to_mask(donut_rings, 24, 32), filled)


def test_coco_tolerance_simplifies_while_pycocotools_keeps_iou() -> None:
    disc = disk(200, 200, cx=100, cy=90, r=60).astype(bool)
    rle = mask_to_rle(disc)
    exact, _ = coco_segmentation(rle, ExportOptions(mask_format="polygons", tolerance=0))
    rough, _ = coco_segmentation(rle, ExportOptions(mask_format="polygons", tolerance=3))
    assert isinstance(exact, list)
    assert isinstance(rough, list)
    assert sum(map(len, rough)) < sum(map(len, exact)) / 2
    painted = polygons_to_mask(rough, 200, 200)
    assert (painted & disc).sum() / (painted | disc).sum() >= 0.99


def test_crowd_rle_option(dataset_project: Any) -> None:
    document = json.loads(export_zip(dataset_project, "coco", {"crowd_rle": True}).read(TRAIN))
    assert {a["iscrowd"] for a in document["annotations"]} == {1}


def test_val_split_writes_one_file_per_subset(project: Any, make_image: Any) -> None:
    for _ in range(12):
        make_image(project, width=16, height=16)
    archive = export_zip(project, "coco", {"val_split": 0.5})
    files = sorted(n for n in archive.namelist() if n.startswith("annotations/"))
    assert files == ["annotations/instances_train.json", "annotations/instances_val.json"]
    for subset in ("train", "val"):
        document = json.loads(archive.read(f"annotations/instances_{subset}.json"))
        assert document["images"]
        assert all(
            f"images/{subset}/{image['file_name']}" in archive.namelist()
            for image in document["images"]
        )


def _reimport_and_export(
    archive: zipfile.ZipFile, users: dict[str, Any], options: dict[str, Any]
) -> tuple[bytes, Any]:
    fresh = project_create(name="Birds", created_by=users["owner"], labels=[])
    payload = archive.fp
    payload.seek(0)
    result = dataset_import(project=fresh, user=users["owner"], name="export.zip", stream=payload)
    assert result.format == "coco"
    return export_zip(fresh, "coco", options).read(TRAIN), fresh


@pytest.mark.parametrize(
    "options", [{"mask_format": "rle"}, {"mask_format": "polygons", "tolerance": 0}]
)
def test_coco_export_import_export_is_byte_identical(
    dataset_project: Any, users: dict[str, Any], options: dict[str, Any]
) -> None:
    first = export_zip(dataset_project, "coco", options)
    again, fresh = _reimport_and_export(first, users, options)
    assert again == first.read(TRAIN)  # byte for byte
    assert Image.objects.filter(project=fresh).count() == 3
    assert set(
        Annotation.objects.filter(image__project=fresh).values_list("source", "review_state")
    ) == {("imported", "proposed")}


def test_filters_select_the_subset(dataset_project: Any) -> None:
    cat = dataset_project.labels.get(name="cat")
    document = json.loads(
        export_zip(
            dataset_project,
            "coco",
            {"filters": {"labels": [cat.id], "only_annotated": True, "status": ["new", "done"]}},
        ).read(TRAIN)
    )
    assert [c["name"] for c in document["categories"]] == ["cat"]
    assert [i["file_name"] for i in document["images"]] == ["first.png", "second.png"]
    assert len(document["annotations"]) == 2
    done_only = json.loads(
        export_zip(
            dataset_project,
            "coco",
            {"filters": {"status": ["done"], "review_states": ["rejected"]}},
        ).read(TRAIN)
    )
    assert [i["file_name"] for i in done_only["images"]] == ["second.png"]
    assert [a["category_id"] for a in done_only["annotations"]] == [2]


def test_same_data_gives_the_same_archive_bytes(dataset_project: Any) -> None:
    from tests.datasets.conftest import run_export

    one, two = run_export(dataset_project, "coco"), run_export(dataset_project, "coco")
    with one.result_file.open("rb") as a, two.result_file.open("rb") as b:
        assert a.read() == b.read()


def test_duplicate_and_unsafe_names_are_made_unique(project: Any, make_image: Any) -> None:
    make_image(project, name="a.png")
    make_image(project, name="A.png")
    make_image(project, name="..\\evil:name.png")
    make_image(project, name="noext")
    names = [i["file_name"] for i in json.loads(export_zip(project, "coco").read(TRAIN))["images"]]
    assert names == ["a.png", "A_2.png", "evil_name.png", "noext.png"]
