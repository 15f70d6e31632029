"""CVAT for images 1.1 and Label Studio JSON imports: files as those tools write them, and
malformed ones rejected with their location before anything is written."""

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samapp.errors import ApplicationError
from samapp.ml.masks import rle_to_mask
from samapp.models import Annotation, Image, Label
from samapp.services.datasets.export_cvat import cvat_mask_rle
from samapp.services.datasets.export_label_studio import brush_encode
from samapp.services.datasets.importers import dataset_import
from samapp.services.datasets.parse_cvat import cvat_mask_decode
from tests.conftest import media_files, png_bytes, zip_bytes
from tests.datasets.conftest import ring

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _import(project: Any, user: Any, entries: dict[str, bytes]) -> Any:
    return dataset_import(
        project=project, user=user, name="data.zip", stream=io.BytesIO(zip_bytes(entries))
    )


def _counts() -> tuple[int, int, int]:
    return Image.objects.count(), Annotation.objects.count(), Label.objects.count()


def _cvat(shapes: str, width: int = 32, height: int = 24, name: str = "my pic.png") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
        "<meta><task><labels><label><name>bird</name><color>#123456</color></label>"
        f'</labels></task></meta><image id="0" name="{name}" width="{width}" '
        f'height="{height}">{shapes}</image></annotations>'
    ).encode()


def test_cvat_mask_rle_matches_cvat_layout() -> None:
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:5] = True
    mask[2, 3] = False
    runs, left, top, width, height = cvat_mask_rle(mask)
    # the box rows 1..3, columns 2..4, row by row, starting with a foreground run of 0
    assert (left, top, width, height) == (2, 1, 3, 3)
    assert runs == [0, 4, 1, 4]
    assert np.array_equal(cvat_mask_decode(", ".join(map(str, runs)), 3, 3), mask[1:4, 2:5])


def test_cvat_import_polygons_masks_boxes_and_groups(project: Any, users: dict[str, Any]) -> None:
    shapes = (
        '<polygon label="bird" points="2,2;12,2;12,10;2,10" group_id="4"></polygon>'
        '<polygon label="bird" points="20,2;30,2;30,10" group_id="4"></polygon>'
        '<mask label="cat" rle="0, 4, 1, 4" left="2" top="14" width="3" height="3"></mask>'
        '<box label="bird" xtl="0" ytl="20" xbr="32" ybr="24"></box>'
        '<polyline label="bird" points="1,1;5,5"></polyline>'
    )
    result = _import(
        project,
        users["manager"],
        {"images/my pic.png": png_bytes(32, 24), "annotations.xml": _cvat(shapes)},
    )
    assert result.format == "cvat"
    assert result.annotations_created == 3
    assert result.labels_created == ["bird"]  # cat exists already
    assert Label.objects.get(project=project, name="bird").color == "#123456"
    assert "annotations.xml: 1 <polyline>" in result.ignored
    grouped, mask, box = (rle_to_mask(a.rle) for a in Annotation.objects.order_by("id"))
    assert grouped[2:10, 2:12].all()
    assert grouped[2:10, 20:30].any()
    assert grouped.sum() == 80 + 40  # a 10 x 8 box and half of another
    assert mask.sum() == 8
    assert not mask[15, 3]
    assert box.sum() == 32 * 4
    assert box[20:24].all()


@pytest.mark.parametrize(
    ("shapes", "problem"),
    [
        ('<polygon label="bird" points="1,1;2,2"></polygon>', "at least 3"),
        ('<polygon label="bird" points="1,1;2,x;3,3"></polygon>', "numbers"),
        ('<polygon label="bird" points="1,1;200,2;3,3"></polygon>', "outside"),
        (
            '<mask label="bird" rle="0, 4, 1" left="2" top="1" width="3" height="3"></mask>',
            "add up",
        ),
        ('<mask label="bird" rle="0, 9" left="30" top="1" width="3" height="3"></mask>', "width"),
        ('<mask label="bird" rle="a" left="2" top="1" width="3" height="3"></mask>', "integers"),
        ('<polygon points="1,1;5,1;5,5"></polygon>', "label"),
    ],
)
def test_malformed_cvat_is_rejected_and_nothing_written(
    project: Any, users: dict[str, Any], media_root: Path, shapes: str, problem: str
) -> None:
    before = _counts()
    with pytest.raises(ApplicationError) as caught:
        _import(
            project, users["manager"], {"my pic.png": png_bytes(32, 24), "a.xml": _cvat(shapes)}
        )
    assert "a.xml: image[0]" in caught.value.message
    assert problem in caught.value.message
    assert _counts() == before
    assert media_files(media_root) == []


def test_cvat_entity_expansion_is_refused(project: Any, users: dict[str, Any]) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;">]>'
        b"<annotations>&y;</annotations>"
    )
    with pytest.raises(ApplicationError, match="not a readable XML"):
        _import(project, users["manager"], {"p.png": png_bytes(8, 8), "annotations.xml": bomb})


def _ls_task(
    results: list[dict[str, Any]], image: str = "/data/upload/1/pic.png"
) -> dict[str, Any]:
    return {"id": 1, "data": {"image": image}, "annotations": [{"id": 1, "result": results}]}


def test_label_studio_import_brush_polygon_and_rectangle(
    project: Any, users: dict[str, Any]
) -> None:
    donut = ring(24, 32, 12, 12, 9, 4).astype(bool)
    tasks = [
        _ls_task(
            [
                {
                    "type": "brushlabels",
                    "value": {"format": "rle", "rle": brush_encode(donut), "brushlabels": ["bird"]},
                },
                {
                    "type": "polygonlabels",
                    "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["cat"]},
                },
                {
                    "type": "rectanglelabels",
                    "value": {
                        "x": 50,
                        "y": 50,
                        "width": 25,
                        "height": 50,
                        "rotation": 0,
                        "rectanglelabels": ["dog"],
                    },
                },
                {"type": "choices", "value": {"choices": ["x"]}},
            ]
        ),
        {
            "id": 2,
            "data": {"image": "other.png"},
            "annotations": [{"was_cancelled": True, "result": [{"type": "brushlabels"}]}],
        },
    ]
    result = _import(
        project,
        users["manager"],
        {
            "pic.png": png_bytes(32, 24),
            "other.png": png_bytes(16, 16, (9, 9, 9)),
            "export.json": json.dumps(tasks).encode(),
        },
    )
    assert result.format == "labelstudio"
    assert result.annotations_created == 3
    brush, triangle, box = (rle_to_mask(a.rle) for a in Annotation.objects.order_by("id"))
    assert np.array_equal(brush, donut)  # the hole kept
    assert triangle.sum() == 16 * 12 // 2  # half of a 16 x 12 box, as pycocotools paints it
    assert box.sum() == 8 * 12
    assert box[12:24, 16:24].all()


@pytest.mark.parametrize(
    "url",
    [
        "/data/upload/3/1f2e3d4c-my%20pic.png",
        "/data/local-files/?d=photos/my%20pic.png",
        "s3://bucket/my pic.png?X-Amz-Signature=abc",
        "images/my pic.png",
    ],
)
def test_label_studio_image_urls_are_matched_by_file_name(
    project: Any, users: dict[str, Any], url: str
) -> None:
    result = {
        "type": "rectanglelabels",
        "value": {"x": 0, "y": 0, "width": 50, "height": 50, "rectanglelabels": ["b"]},
    }
    tasks = json.dumps([_ls_task([result], image=url)]).encode()
    outcome = _import(project, users["manager"], {"x/my pic.png": png_bytes(8, 8), "t.json": tasks})
    assert outcome.annotations_created == 1
    assert rle_to_mask(Annotation.objects.get().rle).sum() == 16


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (
            {"type": "brushlabels", "value": {"rle": [0, 0, 0, 9, 1, 2], "brushlabels": ["b"]}},
            "size",
        ),
        ({"type": "brushlabels", "value": {"rle": "xx", "brushlabels": ["b"]}}, "list of bytes"),
        (
            {"type": "brushlabels", "value": {"rle": [0, 0, 0, 16], "brushlabels": ["b"]}},
            "malformed",
        ),
        (
            {
                "type": "polygonlabels",
                "value": {"points": [[0, 0], [1, 1]], "polygonlabels": ["b"]},
            },
            "3",
        ),
        (
            {
                "type": "polygonlabels",
                "value": {"points": [[0, 0], [900, 1], [1, 2]], "polygonlabels": ["b"]},
            },
            "outside",
        ),
        ({"type": "polygonlabels", "value": {"points": [[0, 0], [9, 1], [1, 2]]}}, "label"),
        (
            {
                "type": "rectanglelabels",
                "value": {
                    "x": 1,
                    "y": 1,
                    "width": 2,
                    "height": 2,
                    "rotation": 30,
                    "rectanglelabels": ["b"],
                },
            },
            "rotated",
        ),
    ],
)
def test_malformed_label_studio_is_rejected(
    project: Any, users: dict[str, Any], result: dict[str, Any], problem: str
) -> None:
    before = _counts()
    with pytest.raises(ApplicationError) as caught:
        _import(
            project,
            users["manager"],
            {"pic.png": png_bytes(2, 2), "t.json": json.dumps([_ls_task([result])]).encode()},
        )
    assert "t.json: [0].annotations[0].result[0]" in caught.value.message
    assert problem in caught.value.message
    assert _counts() == before
