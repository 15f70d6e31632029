"""Property tests: import parsers never fail with anything but a clean error; mask
conversions at the dataset level are exact (RLE) or stable (polygons)."""

import contextlib
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from samapp.errors import ApplicationError
from samapp.ml.masks import mask_to_rle, polygons_to_mask, rle_to_mask
from samapp.services.datasets.common import ExportOptions, export_options_clean
from samapp.services.datasets.export_coco import coco_segmentation
from samapp.services.datasets.importers import _Archive, _coco_plan, _yolo_plan
from samapp.services.datasets.parse_cvat import cvat_object_to_rle, cvat_parse
from samapp.services.datasets.parse_label_studio import label_studio_parse, ls_result_to_mask
from samapp.services.datasets.parsers import (
    Problems,
    coco_parse,
    coco_segmentation_to_rle,
    yolo_labels_parse,
    yolo_names_parse,
)
from samapp.services.uploads import CheckedImage

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)


def _coco_like() -> st.SearchStrategy[Any]:
    """Documents shaped almost like COCO, with random holes and wrong types."""
    number = st.integers(-2, 40) | st.floats(allow_nan=True) | st.text(max_size=3) | st.none()
    segmentation = (
        st.lists(st.lists(number, max_size=10), max_size=3)
        | st.fixed_dictionaries(
            {
                "size": st.lists(number, max_size=3),
                "counts": st.text(max_size=12) | st.lists(number, max_size=6),
            }
        )
        | json_values
    )
    image = st.fixed_dictionaries(
        {
            "id": number,
            "file_name": st.sampled_from(["a.png", "../../etc/passwd", "", "b.png"]) | json_values,
            "width": number,
            "height": number,
        }
    )
    annotation = st.fixed_dictionaries(
        {"image_id": number, "category_id": number, "segmentation": segmentation}
    )
    category = st.fixed_dictionaries({"id": number, "name": st.text(max_size=4) | json_values})
    return st.fixed_dictionaries(
        {
            "images": st.lists(image, max_size=3) | json_values,
            "annotations": st.lists(annotation, max_size=4) | json_values,
            "categories": st.lists(category, max_size=3) | json_values,
        }
    )


def _archive(files: dict[str, bytes]) -> _Archive:
    archive = _Archive(
        images={
            "a.png": CheckedImage("a.png", b"", "0" * 64, "PNG", 32, 24),
            "images/b.png": CheckedImage("b.png", b"", "1" * 64, "PNG", 7, 5),
        },
        files=files,
    )
    archive.index()
    return archive


@FAST
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_coco_parse_on_anything_raises_only_application_error(data: bytes) -> None:
    with contextlib.suppress(ApplicationError):
        coco_parse(data=data, where="x.json")


@FAST
@given(_coco_like())
def test_coco_plan_on_near_coco_raises_only_application_error(document: Any) -> None:
    try:
        plan = _coco_plan(_archive({"c.json": json.dumps(document).encode()}))
    except ApplicationError as exc:  # refusing is allowed; the refusal must be well formed
        assert exc.message  # noqa: PT017
        assert all(isinstance(p, str) for p in exc.extra.get("problems", []))  # noqa: PT017
        return
    for _path, _label, rle in plan.annotations:
        assert rle_to_mask(rle).shape in {(24, 32), (5, 7)}


@FAST
@given(json_values, st.integers(1, 40), st.integers(1, 40))
def test_segmentation_conversion_raises_only_value_error(
    segmentation: Any, height: int, width: int
) -> None:
    try:
        rle = coco_segmentation_to_rle(segmentation, height, width)
    except ValueError:
        return
    assert rle_to_mask(rle).shape == (height, width)


@FAST
@given(st.text(alphabet="0123456789 .-e\nnaif", max_size=120), st.integers(1, 5))
def test_yolo_label_lines_never_raise(text: str, classes: int) -> None:
    problems = Problems()
    shapes = yolo_labels_parse(
        data=text.encode(), where="l.txt", class_count=classes, problems=problems
    )
    for shape in shapes:
        assert 0 <= shape.class_id < classes
        assert len(shape.points) >= 6
        assert all(0 <= v <= 1 for v in shape.points)


@FAST
@given(st.binary(max_size=120) | st.text(max_size=80).map(str.encode))
def test_yolo_plan_on_anything_raises_only_application_error(data: bytes) -> None:
    files = {"data.yaml": b"names: [a, b]", "labels/b.txt": data}
    with contextlib.suppress(ApplicationError):
        _yolo_plan(_archive(files))
    with contextlib.suppress(ApplicationError):
        yolo_names_parse(data=data, where="data.yaml")


cvat_shapes = st.sampled_from(
    [
        '<polygon label="{}" points="{}"/>',
        '<mask label="{}" rle="{}" left="1" top="2" width="3" height="2"/>',
        '<box label="{}" xtl="{}" ytl="1" xbr="4" ybr="4"/>',
    ]
)


@FAST
@given(
    st.lists(
        st.tuples(
            cvat_shapes,
            st.text(alphabet="ab ", max_size=3),
            st.text(alphabet="0123456789,;.- ex", max_size=30),
        ),
        max_size=4,
    ),
    st.sampled_from(["32", "0", "x", "-4"]),
)
def test_cvat_parse_on_near_cvat_raises_only_application_error(
    shapes: list[tuple[str, str, str]], width: str
) -> None:
    body = "".join(template.format(label, value) for template, label, value in shapes)
    image = f'<image id="0" name="p.png" width="{width}" height="24">{body}</image>'
    xml = f"<annotations>{image}</annotations>"
    try:
        dataset = cvat_parse(data=xml.encode(), where="a.xml")
    except ApplicationError:
        return
    problems = Problems("a.xml")
    for image in dataset.images:
        for item in image.objects:
            rle = cvat_object_to_rle(item, image.height, image.width, problems)
            assert rle is None or rle_to_mask(rle).shape == (24, 32)
    assert all(message.startswith("a.xml: image[0].") for message in problems.items)


@FAST
@given(json_values, st.sampled_from(["brushlabels", "polygonlabels", "rectanglelabels"]))
def test_label_studio_results_raise_only_value_error(value: Any, kind: str) -> None:
    try:
        _label, mask = ls_result_to_mask({"type": kind, "value": value}, 6, 5)
    except ValueError:
        return
    assert mask.shape == (6, 5)


@FAST
@given(json_values)
def test_label_studio_parse_on_anything_raises_only_application_error(document: Any) -> None:
    with contextlib.suppress(ApplicationError):
        label_studio_parse(data=json.dumps(document).encode(), where="t.json")


@FAST
@given(json_values)
def test_export_options_raise_only_application_error(options: Any) -> None:
    for export_format in ("coco", "yolo", "bogus"):
        with contextlib.suppress(ApplicationError):
            export_options_clean(format=export_format, options=options)


masks = st.integers(1, 20).flatmap(
    lambda h: st.integers(1, 20).flatmap(lambda w: arrays(np.bool_, (h, w)))
)


@FAST
@given(masks)
def test_coco_rle_segmentation_decodes_exactly_in_pycocotools(mask: np.ndarray) -> None:
    rle = mask_to_rle(mask)
    segmentation, _ = coco_segmentation(rle, ExportOptions(mask_format="rle"))
    coco_rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    assert np.array_equal(mask_utils.decode(coco_rle).astype(bool), mask)
    # and our import of it is the identity
    assert coco_segmentation_to_rle(json.loads(json.dumps(segmentation)), *mask.shape) == rle


@FAST
@given(masks)
def test_polygon_export_import_export_is_stable(mask: np.ndarray) -> None:
    """export(import(export(m))) == export(m) at tolerance 0: what makes the COCO polygon
    round trip identical. (A simplified polygon, tolerance > 0, is lossy and not stable.)"""
    options = ExportOptions(mask_format="polygons", tolerance=0.0)
    first, _ = coco_segmentation(mask_to_rle(mask), options)
    if isinstance(first, dict):  # too small for a ring: written as RLE, exact
        assert np.array_equal(rle_to_mask(first), mask)
        return
    imported = coco_segmentation_to_rle(first, *mask.shape)
    again, _ = coco_segmentation(imported, options)
    assert again == first
    assert np.array_equal(polygons_to_mask(first, *mask.shape), rle_to_mask(imported))


@pytest.mark.parametrize("bad", [b"[" * 100_000, b'{"images": ' + b"[" * 50_000])
def test_deeply_nested_json_is_a_clean_error(bad: bytes) -> None:
    with pytest.raises(ApplicationError):
        coco_parse(data=bad, where="x.json")
