"""Browser end-to-end test of the work pages (``frontend/e2e/work_pages.mjs``) against the
real server of ``test_browser.py``: a manager assigns images to an annotator, who starts her
queue and marks an image done; the manager rejects her annotation with a reason on the review
page (and accepts another), and she sees the reason in her queue and on the image; segment
everything reports what it kept; an export of COCO polygons made from the dialog opens in
pycocotools; an upload in progress. Elements are found by role and accessible name; any page
error fails the run.

``SAM_E2E_SCREENSHOTS=1`` writes the screenshots into ``docs/screens/``.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import PASSWORD, ROOT, _manage, run_scenario, server

__all__ = ["server"]

pytestmark = [pytest.mark.e2e]

ANNOTATOR = "carol"

BURST = 120  # annotations a teammate relabels at once while the owner's workspace shows them
SETUP_ANNOTATOR = f"""
from django.contrib.auth import get_user_model
from samapp.models import Project
from samapp.choices import ReviewState
from samapp.services.annotations import annotation_create
from samapp.services.projects import label_create, member_add
from tests.conftest import rle_box
project = Project.objects.get(name="Demo project")
user = get_user_model().objects.create_user(username="{ANNOTATOR}", password="{PASSWORD}")
member_add(project=project, user=user, role="annotator")
# Her earlier work on the first two images, waiting for review.
first = project.images.get(original_name="demo-01.png")
box = rle_box(first.height, first.width, (4, 4, 20, 16))
mine = annotation_create(image=first, author=user, rle=box, label=project.labels.first(),
                         review_state=ReviewState.PROPOSED)
second = project.images.get(original_name="demo-02.png")
other = annotation_create(image=second, author=user, rle=box, label=project.labels.first(),
                          review_state=ReviewState.PROPOSED)
print("ANNOTATION", mine.id, "OTHER", other.id)
# A teammate's finished image: many small accepted masks under one label, for a label change
# and a bulk review to reach at once.
burst_label = label_create(project=project, name="speck", color="#808080")
corners = [(2 + (i % 12) * 8, 2 + (i // 12) * 8) for i in range({BURST})]
burst = [
    annotation_create(image=second, author=None, label=burst_label,
                      rle=rle_box(second.height, second.width, (x, y, x + 6, y + 6))).id
    for x, y in corners
]
print("BURST", burst_label.id, project.labels.first().id, second.id, *burst)
"""


def _bad_coco_zip(path: Path) -> None:
    """A COCO archive whose annotations point at an image and a category it lacks."""
    import io
    import zipfile

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(png, format="PNG")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 99, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 4]]},
            {"id": 2, "image_id": 1, "category_id": 7, "segmentation": [[0, 0, 4, 0, 4, 4]]},
        ],
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images/a.png", png.getvalue())
        zf.writestr("annotations.json", json.dumps(coco))


@pytest.fixture(scope="module")
def work_run(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "SAM_DATA_DIR": str(server["data_dir"]),
        "DATABASE_URL": f"sqlite:///{server['data_dir'] / 'db.sqlite3'}",
    }
    out = _manage(env, "shell", "-c", SETUP_ANNOTATOR)
    annotation = int(out.split("ANNOTATION", 1)[1].split()[0])
    other = int(out.split("OTHER", 1)[1].split()[0])
    burst_label, burst_target, burst_image, *burst = [
        int(x) for x in out.split("BURST", 1)[1].split()
    ]
    out_dir = tmp_path_factory.mktemp("e2e-work")
    bad_import = out_dir / "bad-coco.zip"
    _bad_coco_zip(bad_import)
    shots = ROOT / "docs" / "screens" if os.environ.get("SAM_E2E_SCREENSHOTS") == "1" else None
    scenario = {
        "baseUrl": server["base"],
        "projectId": server["project_id"],
        "owner": {"username": "admin", "password": PASSWORD},
        "annotator": {"username": ANNOTATOR, "password": PASSWORD},
        "annotation": annotation,
        "other": other,
        "reason": "The mask leaks into the background on the left.",
        "outFile": str(out_dir / "result.json"),
        "exportFile": str(out_dir / "export.zip"),
        "badImport": str(bad_import),
        "burstLabel": burst_label,
        "burstTarget": burst_target,
        "burstImage": burst_image,
        "burst": burst,
        "screenshotDir": str(shots) if shots else None,
    }
    run, result = run_scenario("e2e/work_pages.mjs", scenario, out_dir, timeout=900)
    return {"run": run, "result": result, "scenario": scenario, "server": server}


def test_the_work_pages_scenario_passes(work_run: dict[str, Any]) -> None:
    run = work_run["run"]
    assert run.returncode == 0, (
        f"work pages script failed ({run.returncode}):\n{run.stdout[-8000:]}\n"
        f"{run.stderr[-4000:]}\nserver log:\n"
        f"{(work_run['server']['data_dir'] / 'server.log').read_text()[-4000:]}"
    )
    assert work_run["result"]["pageErrors"] == []


def test_segment_everything_counts_what_it_kept(work_run: dict[str, Any]) -> None:
    segment = work_run["result"]["segment"]
    assert segment["strict"].startswith("0 masks kept — try a lower predicted-IoU threshold")
    assert "ready" not in segment["strict"]
    kept = segment["kept"]
    assert kept > 0
    assert segment["open"] == f"{kept} proposal{'' if kept == 1 else 's'} ready to review."
    # The count the dialog gave is what the review page lists for that image.
    assert segment["listed"] == kept


def test_the_exported_coco_polygons_open_in_pycocotools(work_run: dict[str, Any]) -> None:
    import zipfile

    from pycocotools.coco import COCO

    archive = Path(work_run["scenario"]["exportFile"])
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.startswith("annotations/") and n.endswith(".json")]
        assert names, zf.namelist()
        path = archive.parent / "instances.json"
        path.write_bytes(zf.read(names[0]))
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns
    polygons = [a for a in anns if isinstance(a["segmentation"], list)]
    assert polygons, "the COCO polygons export holds no polygon"
    for a in polygons:
        assert coco.annToMask(a).sum() > 0
    # The annotation accepted on the review page is in it, traced as a polygon.
    assert any(a["bbox"] == [4, 4, 16, 12] for a in polygons), [a["bbox"] for a in polygons]
