"""Imports: COCO and YOLO-seg zips, all or nothing, located errors, names never opened."""

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samapp.errors import ApplicationError
from samapp.ml.masks import mask_to_polygons, mask_to_rle, rle_to_mask
from samapp.models import Annotation, Image, Label
from samapp.services.datasets.importers import dataset_import
from tests.conftest import media_files, png_bytes, zip_bytes
from tests.datasets.conftest import disk, donut, export_zip, two_parts

pytestmark = pytest.mark.django_db


def _import(project: Any, user: Any, entries: dict[str, bytes], **kwargs: Any) -> Any:
    return dataset_import(
        project=project, user=user, name="data.zip", stream=io.BytesIO(zip_bytes(entries)), **kwargs
    )


def _coco(images: list[dict[str, Any]], annotations: list[dict[str, Any]], **extra: Any) -> bytes:
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 7, "name": "bird"}],
    }
    document.update(extra)
    return json.dumps(document).encode()


def _counts() -> tuple[int, int, int]:
    return Image.objects.count(), Annotation.objects.count(), Label.objects.count()


def test_coco_polygons_and_rle_import_as_proposed_pre_annotations(
    project: Any, users: dict[str, Any]
) -> None:
    picture = png_bytes(32, 24, (1, 2, 3))
    rle = mask_to_rle(disk(24, 32))
    polygons = mask_to_polygons(two_parts(24, 32), 0)
    uncompressed = {"size": [24, 32], "counts": [5, 10, 24 * 32 - 15]}
    result = _import(
        project,
        users["manager"],
        {
            "dataset/images/pic.png": picture,
            "dataset/annotations/instances.json": _coco(
                [{"id": 3, "file_name": "pic.png", "width": 32, "height": 24}],
                [
                    {"id": 1, "image_id": 3, "category_id": 7, "segmentation": rle, "iscrowd": 1},
                    {"id": 2, "image_id": 3, "category_id": 7, "segmentation": polygons},
                    {"id": 3, "image_id": 3, "category_id": 7, "segmentation": uncompressed},
                ],
            ),
            "dataset/README.md": b"hello",
        },
    )
    assert (result.images_created, result.annotations_created) == (1, 3)
    assert result.labels_created == ["bird"]
    assert result.ignored == ["dataset/README.md"]
    rows = list(Annotation.objects.order_by("id"))
    assert {(a.source, a.review_state, a.label.name) for a in rows} == {
        ("imported", "proposed", "bird")
    }
    assert rows[0].rle == rle
    assert np.array_equal(rle_to_mask(rows[1].rle), two_parts(24, 32).astype(bool))
    assert rows[2].area == 10
    assert Image.objects.get().original_name == "pic.png"


def test_coco_polygons_of_one_object_unite_as_in_pycocotools(
    project: Any, users: dict[str, Any]
) -> None:
    # A donut's exterior and hole rings: pycocotools fills every ring and unites them.
    rings = mask_to_polygons(donut(24, 32), 0)
    _import(
        project,
        users["manager"],
        {
            "images/pic.png": png_bytes(32, 24, (1, 2, 3)),
            "instances.json": _coco(
                [{"id": 1, "file_name": "pic.png", "width": 32, "height": 24}],
                [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": rings}],
            ),
        },
    )
    filled = donut(24, 32).astype(bool)
    filled[5:10, 7:12] = True
    assert np.array_equal(rle_to_mask(Annotation.objects.get().rle), filled)


def test_existing_images_are_reused(project: Any, users: dict[str, Any], make_image: Any) -> None:
    from tests.datasets.conftest import run_export

    image = make_image(project, width=32, height=24, name="x.png")
    archive = export_zip(project, "coco")
    with run_export(project, "coco").result_file.open("rb") as handle:
        payload = handle.read()
    document = json.loads(archive.read("annotations/instances_train.json"))
    document["categories"] = [{"id": 1, "name": "cat"}]
    document["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": mask_to_rle(disk(24, 32))}
    ]
    entries = {
        "images/x.png": archive.read("images/train/x.png"),
        "a.json": json.dumps(document).encode(),
    }
    result = _import(project, users["manager"], entries)
    assert (result.images_created, result.images_existing, result.labels_created) == (0, 1, [])
    assert Annotation.objects.get().image_id == image.id
    assert payload  # the export itself stayed downloadable


@pytest.mark.parametrize(
    ("annotations", "where"),
    [
        (
            [{"image_id": 99, "category_id": 7, "segmentation": [[0, 0, 5, 0, 5, 5]]}],
            "annotations[0].image_id",
        ),
        (
            [{"image_id": 1, "category_id": 8, "segmentation": [[0, 0, 5, 0, 5, 5]]}],
            "annotations[0].category_id",
        ),
        (
            [{"image_id": 1, "category_id": 7, "segmentation": [[0, 0, 5]]}],
            "annotations[0].segmentation",
        ),
        (
            [{"image_id": 1, "category_id": 7, "segmentation": [[0, 0, 500, 0, 5, 5]]}],
            "annotations[0].segmentation",
        ),
        (
            [
                {
                    "image_id": 1,
                    "category_id": 7,
                    "segmentation": {"size": [24, 32], "counts": "zzz"},
                }
            ],
            "annotations[0].segmentation",
        ),
        (
            [{"image_id": 1, "category_id": 7, "segmentation": {"size": [9, 9], "counts": [81]}}],
            "annotations[0].segmentation",
        ),
        (
            [{"image_id": 1, "category_id": 7, "segmentation": "nope"}],
            "annotations[0].segmentation",
        ),
        ([{"image_id": 1, "category_id": 7}], "annotations[0].segmentation"),
        (["x"], "annotations[0]"),
    ],
)
def test_malformed_coco_is_rejected_with_its_location_and_nothing_written(
    project: Any, users: dict[str, Any], media_root: Path, annotations: list[Any], where: str
) -> None:
    before = _counts()
    good = {"image_id": 1, "category_id": 7, "segmentation": [[0, 0, 5, 0, 5, 5]]}
    entries = {
        "p.png": png_bytes(32, 24),
        "c.json": _coco(
            [{"id": 1, "file_name": "p.png", "width": 32, "height": 24}], [good, good, *annotations]
        ),
    }
    with pytest.raises(ApplicationError) as caught:
        _import(project, users["manager"], entries)
    where = where.replace("[0]", "[2]")
    assert f"c.json: {where}:" in caught.value.message
    assert any(f"c.json: {where}:" in p for p in caught.value.extra["problems"])
    assert _counts() == before
    assert media_files(media_root) == []


def test_errors_list_the_first_problems_and_count_them(project: Any, users: dict[str, Any]) -> None:
    bad = [{"image_id": 1, "category_id": 7, "segmentation": [[1]]}] * 30
    entries = {
        "p.png": png_bytes(32, 24),
        "c.json": _coco([{"id": 1, "file_name": "p.png", "width": 32, "height": 24}], bad),
    }
    with pytest.raises(ApplicationError) as caught:
        _import(project, users["manager"], entries)
    assert len(caught.value.extra["problems"]) == 20
    assert caught.value.extra["problem_count"] == 30
    assert "(and 29 more)" in caught.value.message


def test_size_mismatch_and_missing_image(project: Any, users: dict[str, Any]) -> None:
    entries = {
        "p.png": png_bytes(32, 24),
        "c.json": _coco(
            [
                {"id": 1, "file_name": "p.png", "width": 10, "height": 24},
                {"id": 2, "file_name": "gone.png", "width": 32, "height": 24},
            ],
            [],
        ),
    }
    with pytest.raises(ApplicationError) as caught:
        _import(project, users["manager"], entries)
    problems = caught.value.extra["problems"]
    assert problems[0].startswith("c.json: images[0]: size 10x24 differs")
    assert problems[1] == "c.json: images[1].file_name: no image named 'gone.png' in the archive"


@pytest.mark.parametrize(
    "hostile", ["../../etc/passwd", "/etc/passwd", "..\\..\\secret.png", "C:/secret.png"]
)
def test_file_names_are_matched_never_opened(
    project: Any,
    users: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hostile: str,
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(32, 24))
    monkeypatch.chdir(tmp_path / "media")
    opened: list[str] = []
    real_open = io.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    entries = {
        "p.png": png_bytes(32, 24),
        "c.json": _coco([{"id": 1, "file_name": hostile, "width": 32, "height": 24}], []),
    }
    with pytest.raises(ApplicationError) as caught:
        _import(project, users["manager"], entries)
    assert "no image named" in caught.value.message
    assert not any("passwd" in path or "secret" in path for path in opened)
    assert Image.objects.count() == 0


def test_archive_with_traversal_entry_is_rejected(project: Any, users: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError, match="path leaves the archive"):
        _import(project, users["manager"], {"../x.png": png_bytes(), "c.json": b"{}"})


def test_yolo_import(project: Any, users: dict[str, Any]) -> None:
    entries = {
        "ds/data.yaml": b"names:\n  0: cat\n  1: fox\n",
        "ds/images/train/a.png": png_bytes(32, 24, (9, 9, 9)),
        "ds/labels/train/a.txt": b"0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n\n1 0.5 0.5 0.2 0.2\n",
        "ds/images/val/b.png": png_bytes(32, 24, (8, 8, 8)),
    }
    result = _import(project, users["manager"], entries)
    assert (result.format, result.images_created, result.annotations_created) == ("yolo", 2, 2)
    assert result.labels_created == ["fox"]
    cat, fox = Annotation.objects.order_by("id")
    assert cat.label.name == "cat"
    assert fox.label.name == "fox"
    assert cat.bbox == [3.0, 2.0, 14.0, 11.0]


@pytest.mark.parametrize(
    ("label_text", "where"),
    [
        (b"5 0.1 0.1 0.5 0.1 0.5 0.5\n", "ds/labels/a.txt:1: class id 5"),
        (
            b"0 0.1 0.1 0.5 0.1 0.5 0.5\n0 0.1 1.5 0.5 0.1 0.5 0.5\n",
            "ds/labels/a.txt:2: coordinates must be normalized",
        ),
        (b"0 0.1 0.1 0.5\n", "ds/labels/a.txt:1: expected a box"),
        (b"x 0.1 0.1 0.5 0.1 0.5 0.5\n", "ds/labels/a.txt:1: class id 'x'"),
        (b"0 0.1 nan 0.5 0.1 0.5 0.5\n", "ds/labels/a.txt:1: coordinates must be normalized"),
        (b"\xff\xfe", "ds/labels/a.txt: not UTF-8"),
    ],
)
def test_malformed_yolo_is_rejected_with_its_line(
    project: Any, users: dict[str, Any], label_text: bytes, where: str
) -> None:
    before = _counts()
    entries = {
        "ds/classes.txt": b"cat\n",
        "ds/images/a.png": png_bytes(32, 24),
        "ds/labels/a.txt": label_text,
    }
    with pytest.raises(ApplicationError) as caught:
        _import(project, users["manager"], entries)
    assert any(p.startswith(where) for p in caught.value.extra["problems"]), caught.value.extra
    assert _counts() == before


def test_yolo_orphan_label_and_missing_names(project: Any, users: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError, match="no image for this label file"):
        _import(
            project,
            users["manager"],
            {
                "data.yaml": b"names: [a]",
                "images/a.png": png_bytes(),
                "labels/b.txt": b"0 0 0 1 0 1 1\n",
            },
        )
    with pytest.raises(ApplicationError, match="class names"):
        _import(
            project,
            users["manager"],
            {"images/a.png": png_bytes(), "labels/a.txt": b""},
            format="yolo",
        )


def test_yolo_export_import_round_trip(dataset_project: Any, users: dict[str, Any]) -> None:
    from samapp.services.projects import project_create
    from tests.datasets.conftest import run_export

    job = run_export(dataset_project, "yolo", {"tolerance": 0, "val_split": 0.5})
    fresh = project_create(name="Again", created_by=users["owner"], labels=[])
    with job.result_file.open("rb") as handle:
        result = dataset_import(project=fresh, user=users["owner"], name="y.zip", stream=handle)
    assert (result.images_created, result.annotations_created) == (3, 3)
    originals = {
        (a.image.original_name, a.label.name): rle_to_mask(a.rle)
        for a in Annotation.objects.filter(
            image__project=dataset_project, label__isnull=False
        ).exclude(review_state="rejected")
    }
    for annotation in Annotation.objects.filter(image__project=fresh):
        before = originals[(annotation.image.original_name, annotation.label.name)]
        after = rle_to_mask(annotation.rle)
        assert (before & after).sum() / (before | after).sum() > 0.7  # holes are lost in YOLO
