"""Browser end-to-end test of the project's model, driven by ``frontend/e2e/models.mjs``.

The server is prepared as ``scripts/run.sh`` prepares it, offline: ``sam_models_prepare``
falls back to the demo model sam_tiny and exports its decoder before the server starts, then
the demo data. A second model is then made present (MobileSAM with random weights: a
checkpoint file is what makes a model present) and its decoder exported, and a download of a
third (SAM ViT-B) is kept under way by a worker process against a local stand-in for the
download host that trickles bytes until the scenario cuts it.

The decoders are exported as ``fast_multi`` + ``lowres_multi`` only (what the browser runs for
sam_tiny anyway), which keeps MobileSAM's export short on two cores.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samapp.ml.registry import MODELS
from tests.download_host import DownloadHostHandler, download_host, refused_base_url
from tests.e2e.test_browser import (
    PASSWORD,
    ROOT,
    _depth,
    _manage,
    _missing,
    _skip_or_fail,
    run_scenario,
    serve,
    server_env,
)

pytestmark = [pytest.mark.e2e]

PRESENT = "mobile_sam"
DOWNLOADING = "sam_vit_b"
ABSENT = "sam_vit_h"
ANNOTATOR = "ann"

SETUP = f"""
from django.contrib.auth import get_user_model
from samapp.models import Project
from samapp.services.projects import member_add
project = Project.objects.get(name="Demo project")
user = get_user_model().objects.create_user(username="{ANNOTATOR}", password="{PASSWORD}")
member_add(project=project, user=user, role="annotator")
image = project.images.get(original_name="demo-01.png")
print("PROJECT_ID", project.id, "IMAGE_ID", image.id, "MODEL", project.default_model_key)
"""

# A download worker: the real service, in its own process, as a Celery worker would run it.
DOWNLOAD = f"""
from samapp.services.model_downloads import model_download_run, model_download_start
model_download_start(model_key="{DOWNLOADING}", user=None, enqueue=False)
print("DOWNLOAD", model_download_run(model_key="{DOWNLOADING}"))
"""


def _random_checkpoint(path: Path) -> None:
    """A checkpoint of MobileSAM's architecture with random weights (no network here)."""
    import torch

    from samapp.ml.mobile_sam import build_mobile_sam

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_mobile_sam().state_dict(), path)


def _click_inside_largest_shape() -> list[float]:
    from samapp.management.commands.sam_demo import DEMO_SEED
    from samapp.ml.synthetic import generate_scene

    target = max(generate_scene(DEMO_SEED, 0).masks, key=lambda m: int(m.sum()))
    depth = _depth(target)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return [float(x) + 0.5, float(y) + 0.5]


@pytest.fixture(scope="module")
def models_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = _missing()
    if reason:
        _skip_or_fail(reason)
    data_dir = tmp_path_factory.mktemp("e2e-models")
    out_dir = tmp_path_factory.mktemp("e2e-models-run")
    env = server_env(
        data_dir,
        SAM_DOWNLOAD_BASE_URL=refused_base_url(),
        SAM_DECODER_VARIANTS="fast_multi,lowres_multi",
    )
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    prepared = _manage(env, "sam_models_prepare")
    _manage(env, "sam_demo", "--password", PASSWORD, "--images", "4")
    words = _manage(env, "shell", "-c", SETUP).split()
    project_id = int(words[words.index("PROJECT_ID") + 1])
    image_id = int(words[words.index("IMAGE_ID") + 1])
    assert words[words.index("MODEL") + 1] == "sam_tiny", prepared
    _random_checkpoint(data_dir / "checkpoints" / MODELS[PRESENT].filename)
    _manage(env, "sam_models_prepare", "--no-download")

    spec = MODELS[DOWNLOADING]
    DownloadHostHandler.trickle[spec.filename] = spec.size_bytes or 0
    DownloadHostHandler.cut.clear()
    with download_host() as host, serve(env, data_dir) as base:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", DOWNLOAD],
            cwd=ROOT,
            env={**env, "SAM_DOWNLOAD_BASE_URL": f"{host}/trickle"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        result_path = out_dir / "result.json"
        scenario: dict[str, Any] = {
            "baseUrl": base,
            "projectId": project_id,
            "imageId": image_id,
            "click": _click_inside_largest_shape(),
            "owner": {"username": "admin", "password": PASSWORD},
            "annotator": {"username": ANNOTATOR, "password": PASSWORD},
            "presentModel": PRESENT,
            "downloadingModel": DOWNLOADING,
            "absentModel": ABSENT,
            "cutUrl": f"{host}/cut",
            "outFile": str(result_path),
        }
        try:
            run, result = run_scenario("e2e/models.mjs", scenario, out_dir, env=env)
        finally:
            DownloadHostHandler.cut.set()
            try:
                worker_out, _ = worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker_out, _ = worker.communicate()
            DownloadHostHandler.trickle.pop(spec.filename, None)
        yield {
            "run": run,
            "result": result,
            "worker": worker_out,
            "log": (data_dir / "server.log").read_text()[-4000:],
        }


def _ran(models_run: dict[str, Any], step: str) -> dict[str, Any]:
    run = models_run["run"]
    part = models_run["result"].get(step)
    assert part, (
        f"the browser step {step!r} did not run ({run.returncode}):\n{run.stdout[-6000:]}\n"
        f"{run.stderr[-3000:]}\nserver log:\n{models_run['log']}"
    )
    return dict(part)


def test_first_workspace_gives_a_mask_at_once_and_says_it_runs_the_demo_model(
    models_run: dict[str, Any],
) -> None:
    first = _ran(models_run, "first")
    result = models_run["result"]
    print(f"first mask after page load: {first['firstMaskMs']:.0f} ms")
    assert first["candidates"] >= 1
    # The decoder was exported before the server started: no wait, no 503, no console error.
    tiny = [r for r in result["decoderRequests"] if r["model"] == "sam_tiny"]
    assert tiny, tiny
    assert all(r["status"] == 200 for r in tiny), tiny
    assert result["responses503"] == []
    assert result["consoleErrors"] == []
    assert "offline demo model" in first["notice"]
    assert "Models page" in first["notice"]
    assert "manage.py" not in first["notice"]
    assert first["modelsLink"].endswith("/models")


def test_switching_between_present_models_is_live_for_an_open_workspace(
    models_run: dict[str, Any],
) -> None:
    live = _ran(models_run, "live")
    assert live["status"] == 200
    assert live["modelKey"] == PRESENT
    assert live["samePage"], "the workspace reloaded"
    click = live["click"]
    assert click["modelKey"] == PRESENT
    assert click["candidates"] >= 1
    assert f"/{PRESENT}/" in click["embeddingKey"]
    assert PRESENT in live["inUse"]
    assert not live["notice"], "the demo model's notice outlived the switch"
    requests = models_run["result"]["decoderRequests"]
    assert {"who": "annotator", "model": PRESENT, "status": 200} in requests


def test_switching_to_a_model_not_here_never_breaks_annotation(
    models_run: dict[str, Any],
) -> None:
    pending = _ran(models_run, "pending")
    queued = pending["queued"]
    assert queued == {"status": 200, "modelKey": PRESENT, "pending": DOWNLOADING}
    assert DOWNLOADING in pending["pendingText"]
    assert "%" in pending["pendingText"]
    assert pending["refused"]["status"] == 409
    assert "Models page" in pending["refused"]["detail"]
    for step in ("whilePending", "afterRefusal", "afterFailure"):
        assert pending[step]["modelKey"] == PRESENT, step
        assert pending[step]["candidates"] >= 1, step
    assert "failed" in pending["ended"]
    assert f"{PRESENT} stays in use" in pending["ended"]
    assert PRESENT in pending["inUse"]
    assert pending["samePage"]
    assert "DOWNLOAD failed" in models_run["worker"], models_run["worker"]
    assert models_run["result"]["consoleErrors"] == []
