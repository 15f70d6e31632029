"""Mask RLE bombs: a `counts` string whose runs never end (every character has the
continuation bit) made the parser build one ever-growing integer, quadratic in the length.
`counts` is now capped from the mask size before any work, each number from the pixel count,
and the parse is vectorised: linear in the string, whatever it holds."""

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from samapp.ml import masks

# Every group 0x1F with the continuation bit (0x20) set: one number that grows without end.
NEVER_ENDS = "o"


def _unreachable(*args: Any) -> None:
    raise AssertionError("counts was parsed although its length already rules it out")


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 2), (6, 8), (40, 30), (3, 700)])
def test_the_length_cap_holds_for_the_worst_masks(height: int, width: int) -> None:
    """Checkerboards, stripes, single pixels and random masks all fit under the cap."""
    import numpy as np

    rng = np.random.default_rng(height * 1000 + width)
    yy, xx = np.indices((height, width))
    candidates = [
        (yy + xx) % 2,
        yy % 2,
        xx % 2,
        np.zeros((height, width)),
        np.ones((height, width)),
        *(rng.random((height, width)) < p for p in (0.1, 0.5, 0.9)),
    ]
    limit = masks.counts_length_limit(height, width)
    for mask in candidates:
        rle = masks.mask_to_rle(np.asarray(mask, dtype=np.uint8))
        assert len(rle["counts"]) <= limit
        assert masks.rle_validate(rle, shape=(height, width)) == rle


@pytest.mark.django_db
def test_a_10mb_hostile_body_is_refused_before_decoding(
    client_for: Callable[[str], Any],
    project: Any,
    make_image: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(masks, "_counts_from_string", _unreachable)
    image = make_image(project, width=16, height=12)
    counts = NEVER_ENDS * (10 * 1024 * 1024 - 200)  # the body stays under the 10 MB cap
    body = json.dumps({"rle": {"size": [12, 16], "counts": counts}})
    url = f"/api/projects/{project.id}/images/{image.id}/annotations/"
    client = client_for("annotator")
    timings = []
    for _ in range(3):  # the first request also warms the process up
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 400, response.content[:300]
        assert "needs at most 386" in response.json()["detail"]
    warm, first = min(timings[1:]) * 1000, timings[0] * 1000
    print(f"10 MB hostile counts: 400 in {warm:.1f} ms (first request {first:.0f} ms)")


def test_a_coco_import_segmentation_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from samapp.services.datasets.parsers import coco_segmentation_to_rle

    monkeypatch.setattr(masks, "_counts_from_string", _unreachable)
    with pytest.raises(ValueError, match="needs at most"):
        coco_segmentation_to_rle({"size": [12, 16], "counts": NEVER_ENDS * 100_000}, 12, 16)
    # An RLE sized for a huge mask is refused on its size, before its counts are read.
    huge = {"size": [65_536, 65_536], "counts": NEVER_ENDS * 100_000}
    with pytest.raises(ValueError, match="does not match the image"):
        coco_segmentation_to_rle(huge, 12, 16)


@pytest.mark.django_db
def test_a_coco_import_with_bombs_is_refused_whole_before_decoding(
    project: Any, users: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip whose COCO file carries 200 annotations of 50,000-character counts for a 32x24
    image: rejected whole, with each annotation located, no counts parsed, nothing stored."""
    import io
    import zipfile

    from samapp.errors import ApplicationError
    from samapp.models import Annotation, Image
    from samapp.services.datasets.importers import dataset_import
    from tests.conftest import png_bytes, zip_bytes

    monkeypatch.setattr(masks, "_counts_from_string", _unreachable)
    bomb = {"size": [24, 32], "counts": NEVER_ENDS * 50_000}
    document = {
        "images": [{"id": 1, "file_name": "pic.png", "width": 32, "height": 24}],
        "categories": [{"id": 7, "name": "bird"}],
        "annotations": [
            {"id": n, "image_id": 1, "category_id": 7, "segmentation": bomb} for n in range(200)
        ],
    }
    entries = {"images/pic.png": png_bytes(32, 24), "instances.json": json.dumps(document).encode()}
    # Stored: the archive's ratio guard would refuse these repetitive counts otherwise.
    archive = zip_bytes(entries, compression=zipfile.ZIP_STORED)
    started = time.perf_counter()
    with pytest.raises(ApplicationError) as refused:
        dataset_import(
            project=project, user=users["owner"], name="data.zip", stream=io.BytesIO(archive)
        )
    elapsed = time.perf_counter() - started
    assert "needs at most" in str(refused.value.extra)
    assert Image.objects.count() == 0
    assert Annotation.objects.count() == 0
    print(
        f"COCO import of 200 x 50,000-character counts ({len(archive)} bytes): "
        f"refused in {elapsed * 1000:.0f} ms"
    )


def test_cvat_mask_runs_are_capped_from_the_box_before_any_work() -> None:
    """CVAT's mask RLE ("r, r, ..." over the object's box): four runs of 2**62 wrapped the
    64-bit sum back to the box's 10,000 pixels and numpy's repeat then crashed the process
    (a segmentation fault). Each run is now checked against the box first, and the text's
    length is capped from the box before it is split."""
    from samapp.services.datasets.parse_cvat import cvat_mask_decode

    wrapping = ", ".join([str(2**62)] * 4 + ["10000"])
    with pytest.raises(ValueError, match="add up to 100 x 100"):
        cvat_mask_decode(wrapping, 100, 100)
    with pytest.raises(ValueError, match="longer than any mask"):
        cvat_mask_decode("0, " * 3_000_000 + "4", 2, 2)
    assert cvat_mask_decode("1, 2, 1", 2, 2).tolist() == [[False, True], [True, False]]


def test_a_number_longer_than_the_mask_needs_is_refused() -> None:
    """Within the length cap, a number still has at most as many 5-bit groups as the pixel
    count needs (7 for the largest 65536 x 65536 mask)."""
    with pytest.raises(ValueError, match="too large"):
        masks.rle_validate({"size": [65_536, 65_536], "counts": NEVER_ENDS * 7 + "0"})
    with pytest.raises(ValueError, match="ends inside a number"):
        masks.rle_validate({"size": [65_536, 65_536], "counts": NEVER_ENDS * 100_000})


def _best_of(repeats: int, run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _parse_seconds(counts: str) -> float:
    def run() -> None:
        with pytest.raises(ValueError, match="ends inside a number"):
            masks.rle_validate({"size": [65_536, 65_536], "counts": counts})

    return _best_of(7, run)


def test_parsing_grows_linearly() -> None:
    """4x the characters of a never-ending number costs about 4x the time (the quadratic
    parse cost 16x; the ratio allows for a noisy machine). The strings are inside the cap of
    the largest mask, so they are parsed rather than refused on their length."""
    small, large = NEVER_ENDS * 100_000, NEVER_ENDS * 400_000
    _parse_seconds(small)  # warm-up
    t_small, t_large = _parse_seconds(small), _parse_seconds(large)
    ratio = t_large / t_small
    print(
        f"never-ending counts: {len(small)} chars {t_small * 1000:.2f} ms, "
        f"{len(large)} chars {t_large * 1000:.2f} ms, ratio {ratio:.1f}"
    )
    assert ratio < 10
