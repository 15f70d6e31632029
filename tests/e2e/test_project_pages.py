"""Browser test of the project pages: a real server (daphne, fresh SQLite, the demo project with
annotations on its labels, a second user who is nobody's member) and
``frontend/e2e/project_pages.mjs`` in headless Debian Chromium. The browser does everything
through the pages; this test then checks what the server stored.

``SAM_E2E_SCREENSHOTS=1`` writes the screenshots into ``docs/screens/``.
"""

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_browser import (
    PASSWORD,
    ROOT,
    _manage,
    _missing,
    _skip_or_fail,
    run_scenario,
    serve,
)

pytestmark = [pytest.mark.e2e]

INVITEE = "carol"
NEW_PROJECT = "Garden survey"

# The demo project's first label carries two annotations, its second one.
SEED = f"""
import json
from django.contrib.auth import get_user_model
from samapp.models import Project
from samapp.services.annotations import annotation_create
from tests.conftest import rle_box
User = get_user_model()
User.objects.create_user(username="{INVITEE}", password="{PASSWORD}")
project = Project.objects.get(name="Demo project")
image = project.images.first()
first, second = project.labels.order_by("id")[:2]
owner = User.objects.get(username="admin")
for label, box in ((first, (2, 2, 30, 30)), (first, (40, 40, 70, 70)), (second, (5, 40, 25, 60))):
    annotation_create(image=image, author=owner, label=label,
                      rle=rle_box(image.height, image.width, box))
print("SEEDED", json.dumps({{"name": project.name, "labels": [
    {{"name": first.name, "count": 2}}, {{"name": second.name, "count": 1}}]}}))
"""

STORED = f"""
import json
from samapp.models import Project
new = Project.objects.get(name="{NEW_PROJECT}")
demo = Project.objects.get(name="Demo project")
print("STORED", json.dumps({{
    "labels": sorted(new.labels.values_list("name", flat=True)),
    "review_policy": new.review_policy,
    "members": sorted(new.memberships.values_list("user__username", "role")),
    "archived": new.archived_at is not None,
    "demo_labels": {{l.name: [l.color, l.annotations.count()] for l in demo.labels.all()}},
    "demo_points": demo.settings.get("auto_points_per_side"),
}}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = _missing()
    if reason:
        _skip_or_fail(reason)
    data_dir = tmp_path_factory.mktemp("e2e-pages")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "SAM_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "filesystem://",
    }
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    _manage(env, "sam_demo", "--password", PASSWORD, "--images", "1")
    out = _manage(env, "shell", "-c", SEED)
    seeded = json.loads(out.split("SEEDED", 1)[1].strip())
    with serve(env, data_dir) as base:
        yield {"base": base, "env": env, "data_dir": data_dir, "seeded": seeded}


@pytest.fixture(scope="module")
def pages_run(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out_dir = tmp_path_factory.mktemp("e2e-pages-run")
    shots = ROOT / "docs" / "screens" if os.environ.get("SAM_E2E_SCREENSHOTS") == "1" else None
    scenario = {
        "baseUrl": server["base"],
        "owner": {"username": "admin", "password": PASSWORD},
        "invitee": {"username": INVITEE, "password": PASSWORD},
        "seededProject": server["seeded"],
        "newProject": NEW_PROJECT,
        "outFile": str(out_dir / "result.json"),
        "screenshotDir": str(shots) if shots else None,
    }
    run, result = run_scenario("e2e/project_pages.mjs", scenario, out_dir, timeout=600)
    stored = _manage(server["env"], "shell", "-c", STORED)
    return {
        "run": run,
        "result": result,
        "stored": json.loads(stored.split("STORED", 1)[1].strip()),
        "server": server,
    }


def test_the_browser_scenario_passes_without_page_errors(pages_run: dict[str, Any]) -> None:
    run, result = pages_run["run"], pages_run["result"]
    log = (pages_run["server"]["data_dir"] / "server.log").read_text()[-4000:]
    assert run.returncode == 0, f"{run.stdout[-8000:]}\n{run.stderr[-4000:]}\nserver log:\n{log}"
    assert result["pageErrors"] == []
    assert all(c["ok"] for c in result["checks"])
    assert len(result["checks"]) >= 15


def test_the_server_stored_what_the_pages_did(pages_run: dict[str, Any]) -> None:
    stored, seeded = pages_run["stored"], pages_run["server"]["seeded"]
    assert stored["labels"] == ["bird", "nest"]
    assert stored["review_policy"] == "proposed"
    assert stored["members"] == [["admin", "owner"], [INVITEE, "annotator"]]
    assert stored["archived"] is True
    used, other = seeded["labels"]
    assert used["name"] not in stored["demo_labels"]
    assert stored["demo_labels"][other["name"]] == ["#123456", used["count"] + other["count"]]
    assert stored["demo_points"] == 24
