"""Workers: forced kills during embedding jobs (a real Celery worker on Redis, Postgres),
and a job redelivered while it still runs (a broker visibility timeout shorter than the job).

KILLS workers are SIGKILLed right after they claim a job (5 by default: each cycle
starts a worker process, ~10 s on 2 cores); then one worker runs to the end. Every job
must be READY, once: one row and one stored blob per image."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures import REDIS, require_service
from tests.production.test_pipeline import _wait, _worker, killable_worker_env

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("SAM_SECURITY_KILLS", "5"))
IMAGES = 5


def _rows(url: str) -> list[tuple[int, str, int]]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT id, status, attempts FROM samapp_embedding ORDER BY id"
        ).fetchall()


@pytest.mark.services
@pytest.mark.slow
def test_every_job_finishes_once_despite_worker_kills(pg_database_url, tmp_path) -> None:
    require_service("Redis", *REDIS)
    import json

    env = killable_worker_env(
        pg_database_url,
        redis_db=12,
        data_dir=tmp_path,
        SAM_EMBEDDING_TEST_DELAY="30",  # a first attempt sleeps after its claim
        SAM_EMBEDDING_BATCH_SIZE="1",
        SAM_EMBEDDING_MAX_ATTEMPTS=str(KILLS + 5),
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.security.pg_scenarios", "seed", str(IMAGES)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])["embedding_ids"]
    assert len(ids) == IMAGES
    log = tmp_path / "worker.log"
    started = time.perf_counter()
    for _ in range(KILLS):
        claims = sum(row[2] for row in _rows(pg_database_url))
        worker = _worker(env, log)
        try:
            _wait(
                lambda claims=claims: sum(r[2] for r in _rows(pg_database_url)) > claims,
                120,
                "a claim",
                log,
            )
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    final_env = {**env, "SAM_EMBEDDING_TEST_DELAY": "0"}
    worker = _worker(final_env, log)
    try:
        _wait(lambda: all(r[1] == "ready" for r in _rows(pg_database_url)), 240, "all ready", log)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    rows = _rows(pg_database_url)
    attempts = sum(r[2] for r in rows)
    print(f"{KILLS} kills, {IMAGES} jobs: {attempts} claims, {time.perf_counter() - started:.0f}s")
    assert [r[1] for r in rows] == ["ready"] * IMAGES
    assert len(rows) == IMAGES
    assert attempts >= IMAGES + 1  # the kills did interrupt claimed work
    blobs = list((tmp_path / "media" / "embeddings" / "sam_tiny").rglob("*.f16"))
    assert len(blobs) == IMAGES  # one blob per image: no job stored twice


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_running_job_is_a_no_op(settings, project, make_image) -> None:
    """What a broker does when a job outlives its visibility timeout: it hands the message to
    another worker while the first still runs. The second run finds a live claim and does
    nothing; a third delivery after the end finds READY and does nothing either."""
    from samapp.choices import EmbeddingStatus
    from samapp.models import Embedding
    from samapp.services.embeddings import embeddings_compute_batch

    settings.SAM_RANDOM_INIT_FALLBACK = True
    settings.SAM_EMBEDDING_TEST_DELAY = 1.5  # the first run sleeps after claiming
    settings.SAM_EMBEDDING_CLAIM_TIMEOUT = 600
    image = make_image(project, width=32, height=24)
    embedding = Embedding.objects.create(image_sha256=image.sha256, model_key="sam_tiny")
    outcomes = {}

    def first() -> None:
        from django.db import connection

        try:
            outcomes["first"] = embeddings_compute_batch(embedding_id=embedding.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 30
    while Embedding.objects.get(pk=embedding.pk).status != EmbeddingStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = embeddings_compute_batch(embedding_id=embedding.pk)  # the redelivery
    assert second.ready == []
    assert second.busy_for is not None
    assert second.busy_for > 0
    thread.join(120)
    assert outcomes["first"].ready == [embedding.pk]
    third = embeddings_compute_batch(embedding_id=embedding.pk)
    assert third.ready == []
    assert third.busy_for is None
    embedding.refresh_from_db()
    assert (embedding.status, embedding.attempts) == (EmbeddingStatus.READY, 1)
    assert Embedding.objects.filter(image_sha256=image.sha256).count() == 1
