"""The whole job in the browser (``frontend/e2e/full_job.mjs``), from an empty database and
one admin account made with ``createsuperuser``: the admin creates a project with two labels
and invites a new user by e-mail, who signs up and accepts; 12 images and a zip of 3 go in
through the file picker; the annotator works through her queue (a click on a real shape of
the synthetic scene, a mask accepted with a label, Done), the owner rejects one annotation
with a reason and accepts another, the annotator sees the rejection, a deletion by the owner
disappears from the annotator's open image within 2 s, and the COCO polygons exported from
the dialog open in pycocotools. Only the SPA's pages, found by role and accessible name: no
admin page, no API call from the test. Any page or console error fails it.

``SAM_E2E_SCREENSHOTS=1`` writes the sign-up page's screenshot into ``docs/screens/``.
"""

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.test_browser import (
    PASSWORD,
    ROOT,
    _depth,
    _manage,
    _missing,
    run_scenario,
    serve,
)

pytestmark = [pytest.mark.e2e]

ADMIN = "admin"
ANNOTATOR = {"username": "dana", "email": "dana@example.com", "password": "Dana-e2e-pass-42"}
# A stream of scenes of its own, apart from the demo's.
SEED = 20_261_202
LOOSE = 12
ZIPPED = 3


def _scene_files(out_dir: Path) -> tuple[list[str], str, dict[str, Any]]:
    """The PNGs to pick (12 loose files, one zip of 3) and, per image name, a click at the most
    interior pixel of its largest shape with that shape's ground-truth mask."""
    import PIL.Image

    from samapp.ml.masks import mask_to_rle
    from samapp.ml.synthetic import generate_scene

    shapes: dict[str, Any] = {}
    loose: list[str] = []
    archive = out_dir / "three-more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(LOOSE + ZIPPED):
            scene = generate_scene(SEED, i)
            name = f"scene-{i + 1:02d}.png"
            target = max(scene.masks, key=lambda m: int(m.sum()))
            depth = _depth(target)
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            shapes[name] = {"click": [float(x) + 0.5, float(y) + 0.5], "rle": mask_to_rle(target)}
            png = io.BytesIO()
            PIL.Image.fromarray(scene.image).save(png, format="PNG")
            if i < LOOSE:
                (out_dir / name).write_bytes(png.getvalue())
                loose.append(str(out_dir / name))
            else:
                zf.writestr(f"more/{name}", png.getvalue())
    return loose, str(archive), shapes


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh database holding one superuser and nothing else; sign-up open."""
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"e2e prerequisites missing under CI: {reason}")
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("e2e-full")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "SAM_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
        "SAM_SIGNUP": "open",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    _manage(env, "createsuperuser", "--noinput", "--username", ADMIN, "--email", "admin@localhost")
    with serve(env, data_dir) as base:
        yield {"base": base, "data_dir": data_dir, "env": env}


@pytest.fixture(scope="module")
def full_job(
    empty_server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out_dir = tmp_path_factory.mktemp("e2e-full-run")
    loose, archive, shapes = _scene_files(out_dir)
    scenario = {
        "baseUrl": empty_server["base"],
        "owner": {"username": ADMIN, "password": PASSWORD},
        "annotator": ANNOTATOR,
        "project": "Street survey",
        "labels": [["shape", "#e6194b"], ["background", "#3cb44b"]],
        "files": [*loose, archive],
        "images": LOOSE + ZIPPED,
        "shapes": shapes,
        "reason": "The mask misses the lower edge of the shape.",
        "outFile": str(out_dir / "result.json"),
        "exportFile": str(out_dir / "export.zip"),
        "screenshotDir": (
            str(ROOT / "docs" / "screens") if os.environ.get("SAM_E2E_SCREENSHOTS") == "1" else None
        ),
    }
    run, result = run_scenario("e2e/full_job.mjs", scenario, out_dir, timeout=1200)
    return {"run": run, "result": result, "scenario": scenario, "server": empty_server}


def test_the_whole_job_passes_in_the_browser(full_job: dict[str, Any]) -> None:
    run = full_job["run"]
    assert run.returncode == 0, (
        f"full job script failed ({run.returncode}):\n{run.stdout[-8000:]}\n"
        f"{run.stderr[-4000:]}\nserver log:\n"
        f"{(full_job['server']['data_dir'] / 'server.log').read_text()[-4000:]}"
    )
    result = full_job["result"]
    assert result["pageErrors"] == []
    assert result["consoleErrors"] == []


def test_the_deletion_reached_the_open_image_within_two_seconds(full_job: dict[str, Any]) -> None:
    # The browser waited at most 2 s for it (the check fails otherwise); this is its figure.
    assert 0 <= full_job["result"]["deletionSeenMs"] <= 2000


def test_the_exported_coco_polygons_open_in_pycocotools(full_job: dict[str, Any]) -> None:
    from pycocotools.coco import COCO

    from samapp.ml.masks import rle_to_mask

    archive = Path(full_job["scenario"]["exportFile"])
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.startswith("annotations/") and n.endswith(".json")]
        assert names, zf.namelist()
        path = archive.parent / "instances.json"
        path.write_bytes(zf.read(names[0]))
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == full_job["scenario"]["images"]
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"shape", "background"}
    anns = coco.loadAnns(coco.getAnnIds())
    # The accepted annotation (the rejected one was deleted): a polygon of the clicked shape.
    accepted = full_job["result"]["accepted"]
    assert len(anns) == 1, anns
    (ann,) = anns
    assert isinstance(ann["segmentation"], list)
    assert ann["segmentation"]
    assert coco.loadCats(ann["category_id"])[0]["name"] == "shape"
    image = coco.loadImgs(ann["image_id"])[0]
    assert image["file_name"].endswith(accepted["image"])
    exported = coco.annToMask(ann).astype(bool)
    # What the annotator accepted, as the server stored it (read from its database here).
    out = _manage(
        full_job["server"]["env"],
        "shell",
        "-c",
        "import json; from samapp.models import Annotation; "
        f"print('RLE', json.dumps(Annotation.objects.get(pk={accepted['id']}).rle))",
    )
    stored = rle_to_mask(json.loads(out.split("RLE", 1)[1])).astype(bool)
    truth = rle_to_mask(full_job["scenario"]["shapes"][accepted["image"]]["rle"]).astype(bool)
    # The polygons trace the stored mask; the mask covers the shape that was clicked (how
    # well depends on the tiny test model: test_browser.py judges the model's masks).
    assert _iou(exported, stored) >= 0.9, _iou(exported, stored)
    assert _iou(stored, truth) >= 0.5, _iou(stored, truth)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))
