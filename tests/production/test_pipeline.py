"""The production path: Postgres for concurrency, a real Celery worker on the Redis broker."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures import REDIS, require_service

pytestmark = [pytest.mark.services, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def scenario(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.production.pg_pipeline", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_twenty_concurrent_writers_on_postgres(pg_database_url, tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_database_url, "SAM_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    result = scenario(env, "writers", "20", "3")
    assert result["other"] == []
    assert result["ok"] + result["conflicts"] == 60
    assert result["ok"] >= 3
    # Every successful write bumped the version once; every other one got 412.
    assert result["final_version"] == 1 + result["ok"]
    # One log entry per change (creation + each write), seq without gaps.
    assert result["seqs"] == list(range(1, result["ok"] + 2))


def _embedding(url: str, pk: int) -> tuple[str, int, int]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT status, attempts, (SELECT count(*) FROM samapp_embedding) "
            "FROM samapp_embedding WHERE id = %s",
            (pk,),
        ).fetchone()
    assert row is not None
    return row


def _worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backend",
            "worker",
            "-Q",
            "embeddings,default",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def killable_worker_env(
    database_url: str, *, redis_db: int, data_dir: Path, **extra: str
) -> dict[str, str]:
    """Environment for real workers on Postgres + an emptied Redis database, with claims
    and broker visibility short enough (3 s) that a killed worker's job comes back quickly."""
    import redis

    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "SAM_DATA_DIR": str(data_dir),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SAM_RANDOM_INIT_FALLBACK": "true",
        "SAM_EMBEDDING_CLAIM_TIMEOUT": "3",
        "CELERY_VISIBILITY_TIMEOUT": "3",
        **extra,
    }


def test_worker_killed_mid_task_leads_to_one_ready_embedding(pg_database_url, tmp_path) -> None:
    require_service("Redis", *REDIS)

    env = killable_worker_env(
        pg_database_url,
        redis_db=13,
        data_dir=tmp_path,
        SAM_EMBEDDING_TEST_DELAY="60",  # first attempt sleeps after claiming: kill it there
    )
    pk = scenario(env, "seed")["embedding_id"]
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        _wait(lambda: _embedding(pg_database_url, pk)[0] == "running", 120, "the claim", log)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    assert _embedding(pg_database_url, pk)[:2] == ("running", 1)  # stuck unless retried

    second = _worker(env, log)
    try:
        _wait(lambda: _embedding(pg_database_url, pk)[0] == "ready", 120, "the retry", log)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
    status, attempts, count = _embedding(pg_database_url, pk)
    assert (status, attempts, count) == ("ready", 2, 1)
    stored = list((tmp_path / "media" / "embeddings" / "sam_tiny").rglob("*.f16"))
    assert len(stored) == 1


@pytest.mark.django_db(transaction=True)
async def test_redis_layer_socket_survives_idle_reads(connect, project, settings) -> None:
    """redis-py 8 reads with a 5 s timeout by default, the length of channels_redis' blocking
    pop: without the settings' socket_timeout an idle socket died with 'Timeout reading'."""
    require_service("Redis", *REDIS)
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from backend.settings import base
    from samapp.realtime.events import broadcast
    from tests.fixtures import receive_until

    config = {"hosts": [{"address": "redis://127.0.0.1:6379/14", "socket_timeout": 30}]}
    if base.REDIS_URL:
        assert base.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] > 5
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}
    }
    _, socket = await connect(project.id, "viewer")
    await receive_until(socket, "hello")
    idle_until = time.monotonic() + 6.5  # idle past redis-py's default read timeout
    while time.monotonic() < idle_until:
        if not await socket.receive_nothing(timeout=idle_until - time.monotonic()):
            await socket.receive_json_from()  # presence, hello echoes
    await sync_to_async(broadcast)(project_id=project.id, event="job.progress", payload={"x": 1})
    message = await receive_until(socket, "job.progress", timeout=5)
    assert message["payload"] == {"x": 1}
    await socket.disconnect()
    await get_channel_layer().flush()
