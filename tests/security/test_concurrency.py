"""Lost updates on the production database: 20 writers x 25 read-modify-write updates on
one annotation (25 keeps the run near half a minute on 2 shared cores: raise
SAM_SECURITY_WRITES to run more). Each writer retries on 412 until its write
lands; every write must survive. The HTTP rules (stale If-Match 412, missing 428) are
covered in tests/annotations/test_api.py; DELETE's are added here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.services, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
WRITERS = 20
WRITES = int(os.environ.get("SAM_SECURITY_WRITES", "25"))


def test_no_lost_updates_with_twenty_writers_on_postgres(pg_database_url, tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_database_url, "SAM_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.security.pg_scenarios", "writers", str(WRITERS), str(WRITES)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    total = WRITERS * WRITES
    print(
        f"{WRITERS}x{WRITES}: {result['ok']} landed, {result['conflicts']} retried 412s, "
        f"{result['seconds']}s"
    )
    assert result["other"] == []
    assert result["ok"] == total
    expected = sorted(f"{i}:{s}" for i in range(WRITERS) for s in range(WRITES))
    assert sorted(result["log"]) == expected
    assert result["final_version"] == 1 + total
    assert result["seqs_ok"]
    assert result["events"] == 1 + total


@pytest.mark.django_db
def test_delete_needs_the_current_version(client_for, project, make_image, make_annotation):
    annotation = make_annotation(make_image(project))
    client = client_for("annotator")
    url = f"/api/projects/{project.id}/annotations/{annotation.id}/"
    assert client.delete(url).status_code == 428
    assert client.delete(url, HTTP_IF_MATCH='"7"').status_code == 412
    assert client.patch(url, {"label": None}, format="json").status_code == 428
    assert client.patch(url, {"label": None}, format="json", HTTP_IF_MATCH='"9"').status_code == 412
    assert client.delete(url, HTTP_IF_MATCH='"1"').status_code == 204
