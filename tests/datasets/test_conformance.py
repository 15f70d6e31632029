"""Exports read by the tools' own readers, and round trips through our import.

Oracles: pycocotools (`COCO`, `annToMask`) for COCO; ultralytics (`check_det_dataset`,
`YOLODataset(task="segment")`, `polygon2mask`) for YOLO-seg; label-studio-converter's
brush codec for Label Studio; datumaro (`Dataset.import_from`) for every layout.

ultralytics and datumaro run in a subprocess (tests/datasets/oracle.py), never in this
process: importing ultralytics replaces `PIL.Image.open` process-wide. ultralytics runs with
this interpreter (it is pinned in requirements.txt); datumaro pins opencv-python-headless < 5
and pillow 12, so it runs with the oracle environment's interpreter ($SAM_ORACLE_PYTHON, else
.venv-oracles/bin/python, which scripts/test.sh creates from
tests/datasets/oracles-requirements.txt). Without it the datumaro tests skip, saying why;
under CI=true they fail instead.

Bars: RLE and raster formats pixel-exact; polygons >= 0.99 IoU per instance
(>= 0.97 under 20 pixels); holes kept wherever the format can hold them.
"""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samapp.ml.masks import polygons_to_mask, rle_to_mask
from samapp.models import Annotation
from samapp.services.datasets.importers import dataset_import
from samapp.services.projects import project_create
from tests.datasets.conftest import export_zip, iou, min_iou, unpack

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pycocotools, numpy 2
]

POLYGON_OPTIONS = [{"mask_format": "polygons", "tolerance": 0}, {"mask_format": "polygons"}]
ROOT = Path(__file__).resolve().parents[2]
ORACLE = Path(__file__).with_name("oracle.py")


def _oracle_python() -> str:
    """The oracle environment's interpreter; skip (fail under CI=true) when there is none."""
    python = os.environ.get("SAM_ORACLE_PYTHON") or str(ROOT / ".venv-oracles" / "bin" / "python")
    if Path(python).is_file():
        return python
    message = (
        f"no oracle interpreter at {python}: scripts/test.sh creates .venv-oracles "
        "from tests/datasets/oracles-requirements.txt (or set SAM_ORACLE_PYTHON)"
    )
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}; CI=true, so the datumaro oracle may not be skipped")
    pytest.skip(message)


def _read_with_oracle(python: str, tmp_path: Path, reader: str, *args: str) -> Any:
    """What tests/datasets/oracle.py READER reads, run by ``python`` in its own process."""
    out = tmp_path / f"{reader}.json"
    run = subprocess.run(
        [python, str(ORACLE), reader, *args, str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, f"{reader} oracle failed:\n{run.stdout}\n{run.stderr}"
    return json.loads(out.read_text())


def _decode_mask(encoded: dict[str, Any]) -> np.ndarray:
    height, width = encoded["shape"]
    bits = np.frombuffer(base64.b64decode(encoded["bits"]), dtype=np.uint8)
    return np.unpackbits(bits, count=height * width).reshape(height, width).astype(bool)


def _masks_by_image(project: Any) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Image name -> [(label, mask)] in export order (annotation id)."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for annotation in (
        Annotation.objects.filter(image__project=project, label__isnull=False)
        .select_related("image", "label")
        .order_by("image_id", "id")
    ):
        out.setdefault(annotation.image.original_name, []).append(
            (annotation.label.name, rle_to_mask(annotation.rle))
        )
    return out


def _is_one_part(mask: np.ndarray) -> bool:
    import cv2

    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] == 2


# ---------------------------------------------------------------- COCO: pycocotools


@pytest.mark.parametrize("options", [{"mask_format": "rle", "val_split": 0.5}, *POLYGON_OPTIONS])
def test_coco_read_by_pycocotools(
    conformance_project: Any, tmp_path: Path, options: dict[str, Any]
) -> None:
    from pycocotools.coco import COCO

    root = unpack(export_zip(conformance_project, "coco", options), tmp_path)
    expected = _masks_by_image(conformance_project)
    seen = 0
    for annotations_file in sorted((root / "annotations").glob("instances_*.json")):
        subset = annotations_file.stem.removeprefix("instances_")
        coco = COCO(str(annotations_file))
        names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        for image in coco.loadImgs(coco.getImgIds()):
            assert (root / "images" / subset / image["file_name"]).is_file()
            theirs = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            ours = expected[image["file_name"]]
            assert len(theirs) == len(ours)
            for ann, (label, mask) in zip(theirs, ours, strict=True):
                read = coco.annToMask(ann).astype(bool)
                assert names[ann["category_id"]] == label
                if isinstance(ann["segmentation"], dict) or options.get("tolerance") == 0:
                    assert np.array_equal(read, mask)  # RLE, and pixel-edge rings at tolerance 0
                else:
                    assert iou(read, mask) >= min_iou(mask)
                seen += 1
    assert seen == sum(map(len, expected.values()))


def test_coco_polygons_keep_holes_as_rle(conformance_project: Any) -> None:
    archive = export_zip(conformance_project, "coco", {"mask_format": "polygons"})
    document = json.loads(archive.read("annotations/instances_train.json"))
    kinds = [type(a["segmentation"]).__name__ for a in document["annotations"]]
    # wide: ring (hole), disc, two parts, corner; tall: block, small, ring with island, bottom
    assert kinds == ["dict", "list", "list", "list", "list", "list", "dict", "list"]
    assert len(document["annotations"][2]["segmentation"]) == 2  # one ring per part


# ---------------------------------------------------------------- YOLO: ultralytics


@pytest.mark.parametrize("tolerance", [0, 1.0])
def test_yolo_read_by_ultralytics(
    conformance_project: Any, tmp_path: Path, tolerance: float
) -> None:
    root = unpack(export_zip(conformance_project, "yolo", {"tolerance": tolerance}), tmp_path)
    data = _read_with_oracle(sys.executable, tmp_path, "yolo", str(root / "data.yaml"))
    assert "ultralytics" not in sys.modules  # its PIL.Image.open patch stays in the oracle
    assert data["names"] == [[0, "cat"], [1, "dog"]]
    assert data["nc"] == 2
    expected = _masks_by_image(conformance_project)
    assert {label["file"] for label in data["labels"]} == set(expected)
    for label in data["labels"]:
        ours = expected[label["file"]]
        assert label["classes"] == [n for n, _ in ours]
        assert len(label["masks"]) == len(ours)
        for encoded, (_, mask) in zip(label["masks"], ours, strict=True):
            painted = _decode_mask(encoded)
            assert mask.shape == painted.shape == tuple(label["shape"])
            if _is_one_part(mask):  # holes included: bridged, and cut out again
                assert iou(painted, mask) >= (1.0 if tolerance == 0 else min_iou(mask))
            else:
                # The zero-width bridge between parts paints the line it crosses.
                assert (painted & mask).sum() >= 0.99 * mask.sum()
                assert (painted & ~mask).sum() <= 25


# ---------------------------------------------------------------- Label Studio


def test_label_studio_brush_read_by_label_studio_converter(conformance_project: Any) -> None:
    brush = pytest.importorskip("label_studio_converter.brush", reason="not installed")
    tasks = json.loads(export_zip(conformance_project, "labelstudio").read("tasks.json"))
    expected = _masks_by_image(conformance_project)
    for task in tasks:
        ours = expected[Path(task["data"]["image"]).name]
        (annotation,) = task["annotations"]
        assert len(annotation["result"]) == len(ours)
        for result, (label, mask) in zip(annotation["result"], ours, strict=True):
            height, width = result["original_height"], result["original_width"]
            rgba = brush.decode_rle(result["value"]["rle"]).reshape(height, width, 4)
            assert result["value"]["brushlabels"] == [label]
            assert np.array_equal(rgba[:, :, 3] == 255, mask)


def test_label_studio_polygons_in_percent(conformance_project: Any) -> None:
    tasks = json.loads(
        export_zip(conformance_project, "labelstudio", {"mask_format": "polygons"}).read(
            "tasks.json"
        )
    )
    expected = _masks_by_image(conformance_project)
    kinds = []
    for task in tasks:
        for result, (label, mask) in zip(
            task["annotations"][0]["result"],
            expected[Path(task["data"]["image"]).name],
            strict=True,
        ):
            kinds.append(result["type"])
            if result["type"] == "polygonlabels":
                height, width = mask.shape
                ring = [
                    v * size / 100
                    for x, y in result["value"]["points"]
                    for v, size in ((x, width), (y, height))
                ]
                assert iou(polygons_to_mask([ring], height, width), mask) >= min_iou(mask)
                assert result["value"]["polygonlabels"] == [label]
    # holes and several parts stay brushes (wide image, then the portrait)
    brush, polygon = "brushlabels", "polygonlabels"
    assert kinds == [brush, polygon, brush, polygon, polygon, polygon, brush, polygon]


# ---------------------------------------------------------------- datumaro


@pytest.mark.parametrize(
    ("format", "options", "datumaro_format"),
    [
        ("coco", {"val_split": 0.5}, "coco_instances"),
        ("png", {}, "common_semantic_segmentation"),
        ("voc", {"val_split": 0.5}, "voc_segmentation"),
        ("cvat", {}, "cvat"),
        ("cvat", {"mask_format": "polygons"}, "cvat"),
    ],
)
def test_datumaro_imports_each_layout_as_it_is(
    conformance_project: Any,
    tmp_path: Path,
    format: str,
    options: dict[str, Any],
    datumaro_format: str,
) -> None:
    python = _oracle_python()
    root = unpack(export_zip(conformance_project, format, options), tmp_path / "export")
    dataset = _read_with_oracle(python, tmp_path, "datumaro", str(root), datumaro_format)
    expected = _masks_by_image(conformance_project)
    assert sorted(Path(item["id"]).name for item in dataset["items"]) == sorted(
        Path(name).stem for name in expected
    )  # each image once, whatever the subsets
    if format not in ("coco", "cvat"):
        return
    for item in dataset["items"]:
        name = next(n for n in expected if Path(n).stem == Path(item["id"]).name)
        ours = expected[name]
        height, width = ours[0][1].shape
        masks = []
        for ann in item["annotations"]:
            if ann["type"] == "polygon":
                polygon = polygons_to_mask([ann["points"]], height, width)
                masks.append((ann["label"], ann["group"], polygon))
            else:
                group = ann["group"] or -len(masks) - 1
                masks.append((ann["label"], group, _decode_mask(ann["mask"])))
        grouped: dict[tuple[str, int], np.ndarray] = {}
        for label, group, mask in masks:
            key = (label, group or -id(mask))
            grouped[key] = grouped[key] | mask if key in grouped else mask
        assert len(grouped) == len(ours)
        for (label, _), mask in grouped.items():
            best = max(ours, key=lambda pair: iou(pair[1], mask))
            assert label == best[0]
            assert iou(best[1], mask) >= min_iou(best[1])


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("format", "options", "exact"),
    [
        ("coco", {"mask_format": "rle", "val_split": 0.5}, True),
        ("coco", {"mask_format": "polygons", "tolerance": 0}, True),
        ("coco", {"mask_format": "polygons"}, False),
        ("cvat", {}, True),
        ("cvat", {"mask_format": "polygons", "tolerance": 0}, True),
        ("cvat", {"mask_format": "polygons"}, False),
        ("labelstudio", {}, True),
        ("labelstudio", {"mask_format": "polygons"}, False),
        ("yolo", {"tolerance": 0}, False),
    ],
)
def test_round_trip_through_our_import(
    conformance_project: Any,
    users: dict[str, Any],
    format: str,
    options: dict[str, Any],
    exact: bool,
) -> None:
    archive = export_zip(conformance_project, format, options)
    fresh = project_create(name="Again", created_by=users["owner"], labels=[])
    archive.fp.seek(0)  # type: ignore[union-attr]
    result = dataset_import(project=fresh, user=users["owner"], name="x.zip", stream=archive.fp)  # type: ignore[arg-type]
    assert result.format == format
    before, after = _masks_by_image(conformance_project), _masks_by_image(fresh)
    assert sorted(before) == sorted(after)
    for name, ours in before.items():
        theirs = sorted(after[name], key=lambda pair: pair[1].sum())
        ours = sorted(ours, key=lambda pair: pair[1].sum())
        assert [label for label, _ in theirs] == [label for label, _ in ours]
        for (_, mask), (_, back) in zip(ours, theirs, strict=True):
            if exact:
                assert np.array_equal(back, mask)
            elif format == "yolo" and not _is_one_part(mask):
                assert (back & mask).sum() == mask.sum()
                assert (back & ~mask).sum() <= 25
            else:
                assert iou(back, mask) >= min_iou(mask)
