"""Browser end-to-end test: a real server (daphne, fresh SQLite, demo data, sam_tiny) and the
front end in headless Debian Chromium, driven by ``frontend/e2e/run.mjs`` (playwright-core).

The scene behind demo image 1 is regenerated here (``samapp.ml.synthetic``), so the test knows
the ground-truth mask of the shape it clicks. Skipped with a reason when Chromium, Node or the
front end's node_modules are missing; under ``CI=true`` that is a failure instead.

``SAM_E2E_SCREENSHOTS=1`` writes the screenshots into ``docs/``.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "e2e-Secret-pass-1"
TEAMMATE = "bob"

pytestmark = [pytest.mark.e2e]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (FRONTEND / "node_modules" / "playwright-core").exists():
        return "frontend/node_modules is missing (cd frontend && npm ci)"
    from samapp.ml.tiny import SAM_TINY_CHECKPOINT

    custom = os.environ.get("SAM_CHECKPOINT_DIR")
    if not SAM_TINY_CHECKPOINT.exists() and not (custom and Path(custom, "sam_tiny.pt").exists()):
        return f"no sam_tiny checkpoint at {SAM_TINY_CHECKPOINT} (manage.py sam_train_tiny)"
    if not (ROOT / "static" / "app" / "app.js").exists():
        return "the front-end bundle static/app/app.js is missing (cd frontend && npm run build)"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"e2e prerequisites missing under CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(env: dict[str, str], *args: str, timeout: int = 600) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


SETUP_TEAMMATE = f"""
from django.contrib.auth import get_user_model
from samapp.models import Project
from samapp.services.projects import member_add
project = Project.objects.get(name="Demo project")
User = get_user_model()
user = User.objects.filter(username="{TEAMMATE}").first()
if user is None:
    user = User.objects.create_user(username="{TEAMMATE}", password="{PASSWORD}")
    # A manager: the scenario has the teammate edit the owner's annotation, which the
    # review rules allow only to managers and owners.
    member_add(project=project, user=user, role="manager")
# Proposals for the review view on the second demo image, made server-side as segment
# everything makes them (the eager test server would run the whole job inside a request).
from samapp.management.commands.sam_demo import DEMO_SEED
from samapp.ml.masks import mask_to_rle
from samapp.ml.synthetic import generate_scene
from samapp.choices import AnnotationSource, ReviewState
from samapp.services.annotations import annotation_create
second = project.images.get(original_name="demo-02.png")
if not second.annotations.exists():
    for mask in generate_scene(DEMO_SEED, 1).masks:
        annotation_create(image=second, author=None, rle=mask_to_rle(mask), predicted_iou=0.9,
                          source=AnnotationSource.AUTOMATIC, review_state=ReviewState.PROPOSED)
print("PROJECT_ID", project.id, "PROPOSALS", second.annotations.count())
"""


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an e2e server on `data_dir`: test settings, a fresh SQLite file,
    eager Celery, the spool channel layer (so management commands reach its sockets)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "SAM_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SAM_DEMO_PASSWORD": PASSWORD,
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = _missing()
    if reason:
        _skip_or_fail(reason)
    data_dir = tmp_path_factory.mktemp("e2e-server")
    # Small chunks: the browser's upload step sends one file through the chunked path.
    env = server_env(data_dir, SAM_UPLOAD_CHUNK_BYTES="65536")
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    _manage(env, "sam_demo", "--password", PASSWORD, "--images", "4")
    out = _manage(env, "shell", "-c", SETUP_TEAMMATE)
    project_id = int(out.split("PROJECT_ID", 1)[1].split()[0])
    with serve(env, data_dir) as base:
        yield {
            "base": base,
            "project_id": project_id,
            "data_dir": data_dir,
            "checkpoint_dir": env.get("SAM_CHECKPOINT_DIR", str(data_dir / "checkpoints")),
        }


@contextmanager
def serve(env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """daphne on a free port with `env`, logging to `data_dir/server.log`; yields its base URL
    once the login page answers, and stops it afterwards."""
    port = _free_port()
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "backend.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/accounts/login/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "server did not start:\n" + (data_dir / "server.log").read_text()
                    ) from None
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def run_scenario(
    script: str,
    scenario: dict[str, Any],
    out_dir: Path,
    *,
    timeout: int = 900,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run a playwright-core script of ``frontend/e2e`` on `scenario` (written as JSON into
    `out_dir`); its result is the JSON it wrote to ``scenario["outFile"]`` (empty if none)."""
    config = out_dir / "scenario.json"
    config.write_text(json.dumps(scenario))
    run = subprocess.run(
        ["node", script],
        cwd=FRONTEND,
        env={**(env or os.environ), "SAM_E2E_CONFIG": str(config), "CHROMIUM_PATH": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result_path = Path(scenario["outFile"])
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    print("\n" + run.stdout[-6000:])
    return run, result


def _depth(mask: np.ndarray) -> np.ndarray:
    """Distance of each pixel to the nearest background pixel, the image border included."""
    import cv2

    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def _torch_reference(
    image: np.ndarray, clicks: list[list[float]], checkpoint_dir: str
) -> list[dict[str, Any]]:
    """SAM's own predictor on the same model and image: the mask the browser should show for
    each click (the multimask output with the best predicted IoU)."""
    from segment_anything import SamPredictor

    from samapp.ml.masks import mask_to_rle
    from samapp.ml.registry import load_model

    predictor = SamPredictor(load_model("sam_tiny", checkpoint_dir=checkpoint_dir))
    predictor.set_image(image)
    cases = []
    for x, y in clicks:
        masks, scores, _ = predictor.predict(
            point_coords=np.array([[x, y]]), point_labels=np.array([1]), multimask_output=True
        )
        cases.append({"click": [x, y], "rle": mask_to_rle(masks[int(np.argmax(scores))])})
    return cases


def _scenario(server: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    from samapp.management.commands.sam_demo import DEMO_SEED
    from samapp.ml.masks import mask_to_rle
    from samapp.ml.synthetic import generate_scene

    scene = generate_scene(DEMO_SEED, 0)
    # The largest visible shape; click at its most interior pixel.
    target = max(scene.masks, key=lambda m: int(m.sum()))
    depth = _depth(target)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    rng = np.random.default_rng(0)
    clicks: list[list[float]] = []
    interiors = [np.argwhere(_depth(m) >= 3) for m in scene.masks]
    interiors = [p for p in interiors if len(p)]
    while len(clicks) < 60:
        points = interiors[len(clicks) % len(interiors)]
        py, px = points[int(rng.integers(len(points)))]
        clicks.append([float(px) + 0.5, float(py) + 0.5])
    shots = ROOT / "docs" if os.environ.get("SAM_E2E_SCREENSHOTS") == "1" else None
    parity = _torch_reference(scene.image, clicks[:6], server["checkpoint_dir"])
    return {
        "baseUrl": server["base"],
        "projectId": server["project_id"],
        "projectName": "Demo project",
        "users": [
            {"username": "admin", "password": PASSWORD},
            {"username": TEAMMATE, "password": PASSWORD},
        ],
        "imageName": "demo-01.png",
        "click": [float(x) + 0.5, float(y) + 0.5],
        "gtRle": mask_to_rle(target),
        "latencyClicks": clicks,
        "parity": parity,
        "minParityIou": 0.98,
        "outFile": str(out_dir / "result.json"),
        "exportFile": str(out_dir / "export.zip"),
        "screenshotDir": str(shots) if shots else None,
    }


def _coco_annotations(archive: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if name.endswith(".json"):
                data = json.loads(zf.read(name))
                if isinstance(data, dict) and isinstance(data.get("annotations"), list):
                    images = {i["id"]: i.get("file_name", "") for i in data.get("images", [])}
                    for a in data["annotations"]:
                        found.append({**a, "file_name": images.get(a.get("image_id"), "")})
    return found


@pytest.fixture(scope="module")
def browser_run(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs the whole browser scenario once; the tests below judge its parts."""
    out_dir = tmp_path_factory.mktemp("e2e-run")
    scenario = _scenario(server, out_dir)
    run, result = run_scenario("e2e/run.mjs", scenario, out_dir, timeout=900)
    if result.get("latency"):
        lat = result["latency"]
        print(
            f"click-to-mask latency ({lat['clicks']} clicks, decoder "
            f"{result.get('decoder')}): p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms"
        )
    return {"run": run, "result": result, "scenario": scenario, "server": server}


def test_click_to_mask_save_live_reload_export(browser_run: dict[str, Any]) -> None:
    run, result, scenario = browser_run["run"], browser_run["result"], browser_run["scenario"]
    assert run.returncode == 0, (
        f"e2e script failed ({run.returncode}):\n{run.stdout[-8000:]}\n{run.stderr[-4000:]}\n"
        f"server log:\n{(browser_run['server']['data_dir'] / 'server.log').read_text()[-4000:]}"
    )
    assert result["latency"]["clicks"] >= 50
    annotations = _coco_annotations(Path(scenario["exportFile"]))
    mine = [a for a in annotations if a["file_name"].endswith("demo-01.png")]
    assert mine, f"the saved annotation is not in the export ({len(annotations)} annotations)"


def test_click_inside_a_known_shape_matches_its_ground_truth(browser_run: dict[str, Any]) -> None:
    result = browser_run["result"]
    print(f"displayed mask vs ground truth: IoU {result['iou']:.3f}, latency {result['latency']}")
    assert result["iou"] >= 0.8


def test_upload_by_drop_with_progress_errors_and_duplicates(browser_run: dict[str, Any]) -> None:
    upload = browser_run["result"].get("upload")
    assert upload, "the upload step did not run"
    assert upload["chunkRequests"] >= 2, upload
    assert "2 images added" in upload["summary"], upload
    assert "1 duplicates" in upload["summary"], upload
    assert "1 failed" in upload["summary"], upload
