"""The embedding pipeline's own overhead: time from an upload's POST to `embedding.ready` on a
member's websocket, minus the encoder's time (Embedding.compute_seconds: preprocessing + the
forward), for the embedded default (SQLite, filesystem broker, spool channel layer) and the
production path (Postgres, Redis broker and channel layer).

Each profile starts its own ASGI server (daphne) and Celery worker (solo pool) on a fresh data
directory, warms the model with one upload, then times N uploads one after another.

    python bench/pipeline_overhead.py [--uploads 10] [--profiles embedded,redis]

Prints per profile the median/p90 overhead and its ratio to the encoder time measured in the
same run (the baseline)."""

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import requests
import websockets
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ADMIN_DB = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


SETUP = """
from django.contrib.auth import get_user_model
from samapp.services.api_tokens import api_token_create
from samapp.services.projects import project_create
user = get_user_model().objects.create_user(username="bench", password="x")
project = project_create(name="bench", created_by=user, labels=[])
print("SETUP", project.pk, api_token_create(user=user)[1])
"""


class Profile:
    def __init__(self, name: str, data_dir: Path, extra_env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        # The checkout whose code the processes run (a bench may start another revision's).
        self.code_dir = ROOT
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "backend.settings.local",
            "DJANGO_DEBUG": "false",
            "SAM_DATA_DIR": str(data_dir),
            "SAM_RANDOM_INIT_FALLBACK": "true",
            "DJANGO_LOG_LEVEL": "WARNING",
            **extra_env,
        }
        for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            if key not in extra_env:
                self.env.pop(key, None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        for folder in ("broker", "broker-control"):
            (data_dir / folder).mkdir(exist_ok=True)

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args],
            cwd=self.code_dir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        return done.stdout

    def spawn(self, name: str, *command: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                command,
                cwd=self.code_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def spawn_web(self) -> None:
        """Start the ASGI server (daphne) of this profile on its port."""
        self.spawn(
            "web",
            PY,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "backend.asgi:application",
        )

    def wait_for_web(self, timeout: float = 120) -> None:
        """Wait until the server answers HTTP (any status), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/api/me/", timeout=10)
                return
            except requests.RequestException:  # not listening yet, or its first answer is slow
                time.sleep(0.3)

    def start(self) -> tuple[int, str]:
        self.manage("migrate", "-v", "0")
        line = next(
            x for x in self.manage("shell", stdin=SETUP).splitlines() if x.startswith("SETUP")
        )
        _, project_id, token = line.split()
        self.spawn_web()
        self.spawn(
            "worker",
            PY,
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
            "warning",
        )
        self.wait_for_web()
        return int(project_id), token

    def stop(self) -> None:
        for proc in self.procs:
            with_suppress(lambda p=proc: os.killpg(p.pid, signal.SIGTERM))
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with_suppress(lambda p=proc: os.killpg(p.pid, signal.SIGKILL))


def with_suppress(call: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        call()


def compute_seconds(profile: Profile, sha: str) -> float:
    url = profile.env.get("DATABASE_URL")
    query = "SELECT compute_seconds FROM samapp_embedding WHERE image_sha256 = "
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
            row = conn.execute(query + "%s", (sha,)).fetchone()
    else:
        db = Path(profile.env["SAM_DATA_DIR"]) / "db.sqlite3"
        with sqlite3.connect(db) as conn:
            row = conn.execute(query + "?", (sha,)).fetchone()
    assert row is not None
    assert row[0] is not None
    return float(row[0])


async def run_uploads(
    profile: Profile, project_id: int, token: str, count: int
) -> list[dict[str, float]]:
    base = f"http://127.0.0.1:{profile.port}"
    ws_url = f"ws://127.0.0.1:{profile.port}/ws/projects/{project_id}/?token={token}"
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    rows = []
    async with websockets.connect(ws_url, origin=base) as ws:  # type: ignore[arg-type]
        hello = json.loads(await ws.recv())
        assert hello["event"] == "hello", hello
        for index in range(count + 1):
            content = png(index + uuid.uuid4().int % 10_000)
            started = time.perf_counter()
            response = await asyncio.to_thread(
                session.post,
                f"{base}/api/projects/{project_id}/images/",
                files={"file": (f"{index}.png", content, "image/png")},
            )
            posted = time.perf_counter()
            assert response.status_code == 201, response.text
            sha = response.json()["created"][0]["sha256"]
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=300))
                if message["event"] in ("embedding.ready", "embedding.failed") and (
                    message["payload"]["sha256"] == sha
                ):
                    break
            ready = time.perf_counter()
            assert message["event"] == "embedding.ready", message
            encoder = compute_seconds(profile, sha)
            if index == 0:
                continue  # warm-up: model load, first imports
            rows.append(
                {
                    "total": ready - started,
                    "post": posted - started,
                    "encoder": encoder,
                    "overhead": ready - started - encoder,
                }
            )
    return rows


def summary(name: str, rows: list[dict[str, float]]) -> None:
    def ms(values: list[float], q: float) -> float:
        return 1000 * float(np.quantile(values, q))

    overhead = [r["overhead"] for r in rows]
    encoder = [r["encoder"] for r in rows]
    post = [r["post"] for r in rows]
    print(
        f"{name:9s} n={len(rows)}  overhead p50 {ms(overhead, 0.5):7.1f} ms"
        f"  p90 {ms(overhead, 0.9):7.1f} ms"
        f"  | of which POST p50 {ms(post, 0.5):6.1f} ms  | encoder p50 {ms(encoder, 0.5):7.1f} ms"
        f"  | overhead/encoder {statistics.median(overhead) / statistics.median(encoder):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--profiles", default="embedded,redis")
    args = parser.parse_args()
    for name in args.profiles.split(","):
        with tempfile.TemporaryDirectory(prefix=f"sam-bench-{name}-") as tmp:
            extra: dict[str, str] = {}
            dbname = None
            if name == "redis":
                import psycopg
                import redis

                dbname = f"sambench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(ADMIN_DB, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{dbname}"')
                redis.Redis.from_url("redis://127.0.0.1:6379/12").flushdb()
                extra = {
                    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{dbname}",
                    "REDIS_URL": "redis://127.0.0.1:6379/12",
                }
            profile = Profile(name, Path(tmp), extra)
            try:
                project_id, token = profile.start()
                rows = asyncio.run(run_uploads(profile, project_id, token, args.uploads))
                summary(name, rows)
            except Exception:
                for log in sorted(profile.logs.glob("*.log")):
                    print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
                raise
            finally:
                profile.stop()
                if dbname:
                    import psycopg

                    with psycopg.connect(ADMIN_DB, autocommit=True) as c:
                        c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
