"""Broker restarts survived: a real Celery worker (solo pool) on a private Redis broker, with a
throwaway Postgres database and the production settings. The broker is SIGKILLed (no
persistence: its queues are gone), an image is uploaded through the services while it is down
(publishing the embedding task fails: the upload must still succeed and leave its embedding
PENDING), then Redis comes back on the same port. The worker must reconnect by itself and,
on reconnecting, re-queue the pending row: the embedding ends READY, once, within WAIT s.

The machine's shared Redis is never touched: this test starts its own ``redis-server``."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.production.conftest import (
    pg_migrated,
    pg_query,
    pg_url,
    production_env,
    run_scenario,
)
from tests.production.test_pipeline import _wait, _worker

__all__ = ["pg_migrated", "pg_url"]

pytestmark = [pytest.mark.services, pytest.mark.slow]

WAIT = 120  # seconds from the broker's restart to READY


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}; CI=true, so the production-path tests may not be skipped")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A throwaway ``redis-server`` on its own port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.binary = shutil.which("redis-server")
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.binary is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--save", "", "--appendonly", "no", "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            assert self.process.poll() is None, (self.directory / "redis.log").read_text()
            time.sleep(0.1)
        raise AssertionError(f"redis-server did not listen on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no shutdown, no save
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _skip_or_fail("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory)
    try:
        yield server
    finally:
        server.kill()


def test_an_upload_while_the_broker_is_down_is_computed_after_its_restart(
    private_redis: PrivateRedis, pg_migrated: str, tmp_path: Path
) -> None:
    private_redis.start()
    broker_url = f"redis://127.0.0.1:{private_redis.port}/0"
    env = production_env(
        pg_migrated,
        tmp_path / "data",
        CELERY_BROKER_URL=broker_url,
        SAM_RANDOM_INIT_FALLBACK="true",
        SCENARIO_USER="broker-restart",
    )
    log = tmp_path / "worker.log"
    worker = _worker(env, log)
    try:
        _wait(lambda: " ready." in log.read_text(errors="replace"), 180, "the worker", log)
        project_id = run_scenario(env, "project", "Broker restart")["project_id"]

        private_redis.kill()
        uploaded = run_scenario(env, "upload-to", str(project_id), "1", "300")
        assert uploaded["created"] == 1
        [embedding_id] = uploaded["embedding_ids"]
        [(status,)] = pg_query(
            pg_migrated, "SELECT status FROM samapp_embedding WHERE id = %s", (embedding_id,)
        )
        assert status == "pending"  # saved; its message could not be published

        private_redis.start()  # same port, empty: the queues are gone
        restarted = time.perf_counter()

        def finished() -> bool:
            [(value,)] = pg_query(
                pg_migrated, "SELECT status FROM samapp_embedding WHERE id = %s", (embedding_id,)
            )
            return value in ("ready", "failed")

        _wait(finished, WAIT, "the embedding after the broker's restart", log)
        seconds = time.perf_counter() - restarted
        assert worker.poll() is None, "the worker died:\n" + log.read_text()[-4000:]
        [sha256] = uploaded["sha256"]
        rows = pg_query(
            pg_migrated,
            "SELECT status, error FROM samapp_embedding WHERE image_sha256 = %s",
            (sha256,),
        )
        assert rows == [("ready", "")], log.read_text()[-4000:]
        print(f"broker restart: embedding READY {seconds:.1f} s after Redis came back")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
