import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO

from samapp.ml.masks import polygons_to_mask, rle_to_mask
from samapp.models import Annotation, Image
from samapp.services.datasets.importers import dataset_import
from samapp.services.projects import project_create
from tests.datasets.conftest import export_zip

pytestmark = pytest.mark.django_db


def _coco_from_zip(archive: zipfile.ZipFile, tmp_path: Path) -> COCO:
    path = tmp_path / "annotations.json"
    path.write_bytes(archive.read("annotations.json"))
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
        assert archive.read("images/" + image["file_name"])[:8] == b"\x89PNG\r\n\x1a\n"
    ours = list(
        Annotation.objects.filter(label__isnull=False)
        .exclude(review_state="rejected")
        .order_by("image_id", "id")
    )
    theirs = coco.loadAnns(coco.getAnnIds())
    assert len(theirs) == len(ours) == 3  # rejected and unlabeled ones are left out
    for ann, annotation in zip(theirs, ours, strict=True):
        expected = rle_to_mask(annotation.rle)
        theirs_mask = coco.annToMask(ann).astype(bool)
        if mask_format == "rle":
            assert np.array_equal(theirs_mask, expected)  # pixel for pixel
        else:
            # Polygons are lossy for pycocotools: it unions rings (no holes) and rasterizes
            # vertices as pixel corners, not centres. Our even-odd reading is exact (tol 0).
            assert np.array_equal(polygons_to_mask(ann["segmentation"], 24, 32), expected)
            iou = (theirs_mask & expected).sum() / (theirs_mask | expected).sum()
            assert iou > 0.65
        assert ann["area"] == annotation.area and ann["bbox"] == annotation.bbox
        assert ann["iscrowd"] == 0
        if mask_format == "polygons":
            assert isinstance(ann["segmentation"], list)
            assert all(len(ring) >= 6 and len(ring) % 2 == 0 for ring in ann["segmentation"])
        else:
            assert set(ann["segmentation"]) == {"size", "counts"}


def test_coco_polygons_keep_holes_in_even_odd_reading(dataset_project: Any) -> None:
    archive = export_zip(dataset_project, "coco", {"mask_format": "polygons", "tolerance": 0})
    document = json.loads(archive.read("annotations.json"))
    donut_rings = document["annotations"][0]["segmentation"]
    assert len(donut_rings) == 2  # exterior + hole
    first = Annotation.objects.order_by("id").first()
    assert np.array_equal(polygons_to_mask(donut_rings, 24, 32), rle_to_mask(first.rle))


def test_coco_tolerance_simplifies(dataset_project: Any) -> None:
    exact = json.loads(
        export_zip(dataset_project, "coco", {"mask_format": "polygons", "tolerance": 0}).read(
            "annotations.json"
        )
    )
    rough = json.loads(
        export_zip(dataset_project, "coco", {"mask_format": "polygons", "tolerance": 3}).read(
            "annotations.json"
        )
    )
    count = lambda doc: sum(len(r) for a in doc["annotations"] for r in a["segmentation"])  # noqa: E731
    assert count(rough) < count(exact)


def test_crowd_rle_option(dataset_project: Any) -> None:
    document = json.loads(
        export_zip(dataset_project, "coco", {"crowd_rle": True}).read("annotations.json")
    )
    assert {a["iscrowd"] for a in document["annotations"]} == {1}


def _reimport_and_export(
    archive: zipfile.ZipFile, users: dict[str, Any], options: dict[str, Any]
) -> tuple[bytes, Any]:
    fresh = project_create(name="Birds", created_by=users["owner"], labels=[])
    payload = archive.fp
    payload.seek(0)
    result = dataset_import(project=fresh, user=users["owner"], name="export.zip", stream=payload)
    assert result.format == "coco"
    return export_zip(fresh, "coco", options).read("annotations.json"), fresh


@pytest.mark.parametrize(
    "options", [{"mask_format": "rle"}, {"mask_format": "polygons", "tolerance": 0}]
)
def test_coco_export_import_export_is_byte_identical(
    dataset_project: Any, users: dict[str, Any], options: dict[str, Any]
) -> None:
    first = export_zip(dataset_project, "coco", options)
    again, fresh = _reimport_and_export(first, users, options)
    assert again == first.read("annotations.json")  # byte for byte
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
        ).read("annotations.json")
    )
    assert [c["name"] for c in document["categories"]] == ["cat"]
    assert [i["file_name"] for i in document["images"]] == ["first.png", "second.png"]
    assert len(document["annotations"]) == 2
    done_only = json.loads(
        export_zip(
            dataset_project,
            "coco",
            {"filters": {"status": ["done"], "review_states": ["rejected"]}},
        ).read("annotations.json")
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
    names = [
        i["file_name"]
        for i in json.loads(export_zip(project, "coco").read("annotations.json"))["images"]
    ]
    assert names == ["a.png", "A_2.png", "evil_name.png", "noext.png"]
