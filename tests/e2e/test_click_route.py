"""The traced click of ``docs/architecture.md``, measured: which source files carry one click on
the image to its mask and the accepted mask to the stored annotation.

The browser half (``frontend/e2e/click_route.mjs``) stops Chromium's debugger where the click
leaves the page for the decoder worker, where the worker runs the decoder graph, and where the
accepted mask leaves as a POST; each stack, async parts included, is mapped to source files
through the source maps of a second build that must equal the served bundle byte for byte.
The server half replays that POST's body in this process and reads the stack at the moment the
annotation row is inserted (the replay signs in with a token, the browser with its session:
authentication runs and returns before the view's body, so the stack there is the same).

A file counts when one of its functions is on one of those stacks: helpers that run and return
before a boundary (the RLE check, the prompt tensors, the bounded JSON parser) are not on the
route, the modules whose code holds the click are.
"""

import re
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import FRONTEND, PASSWORD, ROOT, run_scenario, server

__all__ = ["server"]

pytestmark = [pytest.mark.e2e]

MAX_ROUTE_FILES = 12
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _project_files(stack: traceback.StackSummary) -> list[str]:
    """The repository's own files on `stack` (outermost first, each once), tests aside."""
    files: list[str] = []
    for frame in stack:
        path = Path(frame.filename).resolve()
        if not path.is_relative_to(ROOT):
            continue
        name = path.relative_to(ROOT).as_posix()
        if name.split("/")[0] in ("samapp", "backend") and name not in files:
            files.append(name)
    return files


def _server_route(client: Any, url: str, body: dict[str, Any]) -> list[str]:
    """POST `body` to `url` and return the files on the stack when the annotation row is
    inserted."""
    from django.db import connection

    stacks: list[list[str]] = []

    def watch(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if sql.startswith('INSERT INTO "samapp_annotation" '):
            stacks.append(_project_files(traceback.extract_stack()))
        return execute(sql, *args)

    with connection.execute_wrapper(watch):
        response = client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert len(stacks) == 1, stacks
    return stacks[0]


def _documented_route() -> list[str]:
    """The files that `docs/architecture.md` lists as the click's route."""
    text = ARCHITECTURE.read_text()
    section = text.split("## One click, traced", 1)[1].split("\n## ", 1)[0]
    listed = section.split("Files on the route", 1)[1]
    return re.findall(r"`((?:frontend|samapp|backend)/[\w/.]+)`", listed)


@pytest.fixture(scope="module")
def browser_route(
    server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out_dir = tmp_path_factory.mktemp("click-route")
    maps_dir = out_dir / "bundle"
    hidden_maps = ["--sourcemap", "hidden"]  # the same bundle, with maps it does not name
    build = subprocess.run(
        ["npx", "vite", "build", "--outDir", str(maps_dir), "--emptyOutDir", *hidden_maps],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    from samapp.management.commands.sam_demo import DEMO_SEED
    from samapp.ml.synthetic import generate_scene

    target = max(generate_scene(DEMO_SEED, 0).masks, key=lambda m: int(m.sum()))
    ys, xs = target.nonzero()
    middle = len(ys) // 2
    scenario = {
        "baseUrl": server["base"],
        "user": {"username": "admin", "password": PASSWORD},
        "projectName": "Demo project",
        "imageName": "demo-01.png",
        "click": [float(xs[middle]) + 0.5, float(ys[middle]) + 0.5],
        "servedDir": str(ROOT / "static" / "app"),
        "mapsDir": str(maps_dir),
        "sourceRoot": str(ROOT),
        "outFile": str(out_dir / "route.json"),
    }
    run, result = run_scenario("e2e/click_route.mjs", scenario, out_dir, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-4000:]
    return result


@pytest.fixture
def route(
    browser_route: dict[str, Any], project: Any, make_image: Any, client_for: Any
) -> list[str]:
    """The whole route: the click to its mask, then the accepted mask to the stored row."""
    body = dict(browser_route["body"])
    height, width = body["rle"]["size"]
    image = make_image(project, width=width, height=height)
    body["label"] = project.labels.first().id
    url = f"/api/projects/{project.id}/images/{image.id}/annotations/"
    server_files = _server_route(client_for("owner"), url, body)
    parts = [browser_route["click"], browser_route["decode"], browser_route["save"], server_files]
    files: list[str] = []
    for part in parts:
        files += [name for name in part if name not in files]
    print("\nthe traced click:", *(f"  {n}. {name}" for n, name in enumerate(files, 1)), sep="\n")
    return files


def test_each_boundary_of_the_click_is_traced(
    browser_route: dict[str, Any], route: list[str]
) -> None:
    """Each stack ends where its boundary is: the debugger stopped where it was told to."""
    ends = {part: (browser_route[part] or [None])[-1] for part in ("click", "decode", "save")}
    assert ends["click"] == "frontend/src/sam/decoderClient.ts", browser_route["click"]
    assert ends["decode"] == "frontend/src/sam/decoderContext.ts", browser_route["decode"]
    assert ends["save"] == "frontend/src/api/client.ts", browser_route["save"]
    assert "samapp/services/annotations.py" in route, route


def test_the_documented_route_is_the_traced_one(route: list[str]) -> None:
    assert _documented_route() == route


def test_a_click_reaches_its_stored_annotation_through_at_most_12_files(route: list[str]) -> None:
    assert len(route) <= MAX_ROUTE_FILES, route
