"""A real Celery worker process on a real broker (RabbitMQ, then Redis) with Postgres as the
database: an upload through the services queues the embedding task after commit; the worker
(prefork, as scripts/run.sh starts it) consumes it, computes the embedding with the model,
stores it, marks the row READY in Postgres and announces "embedding.ready" to the project's
room through channels_redis on the real Redis, where this test listens."""

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.production.conftest import (
    AMQP_URL,
    RABBITMQ,
    REDIS,
    REDIS_BROKER_URL,
    REDIS_LAYER_URL,
    ROOT,
    pg_query,
    production_env,
    require,
    run_scenario,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

BROKERS = {
    "rabbitmq": ("RabbitMQ", RABBITMQ, AMQP_URL),
    "redis": ("Redis", REDIS, REDIS_BROKER_URL),
}
QUEUES = ("embeddings", "default")
# As scripts/run.sh starts its embeddings worker: one prefork child.
WORKER_ARGS = ("-Q", "embeddings", "-c", "1", "--loglevel=INFO",
               "--without-gossip", "--without-mingle", "--without-heartbeat")  # fmt: skip


def purge(broker_url: str) -> None:
    """Empty the queues the worker reads, so leftovers of an earlier run cannot interfere."""
    if broker_url.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker_url).flushdb()
        return
    from kombu import Connection, Exchange, Queue

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        for name in QUEUES:
            queue = Queue(name, Exchange(name, "direct"), routing_key=name)(channel)
            queue.declare()
            queue.purge()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-6000:] if log.exists() else "(no log)"
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; worker log:\n{tail}")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``start(env, args=WORKER_ARGS)``: start ``celery -A backend worker`` in its own process
    group; always killed at the end."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str], args: tuple[str, ...] = WORKER_ARGS) -> Path:
        log = tmp_path / f"worker-{len(started)}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backend",
                "worker",
                *args,
                "-n",
                f"ops-test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        wait_for(
            lambda: process.poll() is not None or " ready." in log.read_text(errors="replace"),
            180,
            "the worker to be ready",
            log,
        )
        assert process.poll() is None, "the worker exited:\n" + log.read_text()[-6000:]
        return log

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # warm shutdown of the worker and its child
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # a pool child that outlived its parent
            os.killpg(process.pid, signal.SIGKILL)


class RoomListener:
    """Joins a project's room on the real channels_redis layer, as a websocket consumer does."""

    def __init__(self, url: str, project_id: int) -> None:
        from channels_redis.core import RedisChannelLayer

        from samapp.realtime.events import project_group

        self.loop = asyncio.new_event_loop()
        self.layer = RedisChannelLayer(hosts=[url])
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(project_group(project_id), self.channel))

    def receive(self, event: str, timeout: float) -> dict[str, Any]:
        async def until() -> dict[str, Any]:
            while True:
                message = await self.layer.receive(self.channel)
                if message.get("event") == event:
                    return message

        return self.loop.run_until_complete(asyncio.wait_for(until(), timeout))

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.flush())
        self.loop.run_until_complete(self.layer.close_pools())
        self.loop.close()


def checkpoint_missing() -> bool:
    from samapp.ml.tiny import SAM_TINY_CHECKPOINT

    return not SAM_TINY_CHECKPOINT.is_file()


@pytest.mark.parametrize("broker", list(BROKERS))
def test_worker_computes_an_uploaded_image_embedding(
    broker: str, pg_migrated: str, tmp_path: Path, start_worker: Callable[[dict[str, str]], Path]
) -> None:
    name, address, broker_url = BROKERS[broker]
    require(name, address)
    require("Redis (channel layer)", REDIS)
    purge(broker_url)
    import redis

    redis.Redis.from_url(REDIS_LAYER_URL).flushdb()
    extra = {"CELERY_BROKER_URL": broker_url, "REDIS_URL": REDIS_LAYER_URL}
    if checkpoint_missing():
        # Until samapp/ml/weights/sam_tiny.pt is committed, the same path with random weights.
        extra["SAM_RANDOM_INIT_FALLBACK"] = "true"
    env = production_env(pg_migrated, tmp_path / "data", **extra)

    log = start_worker(env)
    project_id = run_scenario(env, "project", f"Worker via {broker}")["project_id"]
    listener = RoomListener(REDIS_LAYER_URL, project_id)
    try:
        first_scene = {"rabbitmq": 100, "redis": 200}[broker]  # distinct images per broker
        uploaded = run_scenario(env, "upload-to", str(project_id), "1", str(first_scene))
        assert uploaded["created"] == 1
        [embedding_id] = uploaded["embedding_ids"]
        [sha256] = uploaded["sha256"]

        def status() -> str | None:
            [(value,)] = pg_query(
                pg_migrated, "SELECT status FROM samapp_embedding WHERE id = %s", (embedding_id,)
            )
            return value if value in ("ready", "failed") else None

        outcome = wait_for(status, 240, "the embedding to be computed", log)
        [(error,)] = pg_query(
            pg_migrated, "SELECT error FROM samapp_embedding WHERE id = %s", (embedding_id,)
        )
        assert outcome == "ready", f"{error}\n{log.read_text()[-6000:]}"
        [(path, shape, dtype, byte_size)] = pg_query(
            pg_migrated,
            "SELECT storage_path, shape, dtype, byte_size FROM samapp_embedding WHERE id = %s",
            (embedding_id,),
        )
        stored = tmp_path / "data" / "media" / path
        assert stored.is_file()
        assert stored.stat().st_size == byte_size > 0
        assert dtype == "float16"
        assert byte_size == 2 * math.prod(shape)  # float16

        message = listener.receive("embedding.ready", timeout=30)
        assert message["payload"]["sha256"] == sha256
        # The row turns READY before the worker logs the task's end: wait for that line.
        wait_for(
            lambda: "succeeded" in log.read_text(errors="replace"),
            60,
            "the worker to log the task's success",
            log,
        )
    finally:
        listener.close()
    text = log.read_text(errors="replace")
    assert f"Connected to {broker_url.split(':')[0]}://" in text
    assert "samapp.tasks.embedding_compute_task" in text
