"""The web tier scales out: two ASGI server processes (uvicorn, production settings) on one
Postgres database and one Redis channel layer. A write made through one process reaches a
websocket held by the other, and each process serves REST from its own connection pool.
Nothing is sticky: the client below talks to both processes with the same token."""

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import rle_box
from tests.production.conftest import (
    REDIS,
    REDIS_LAYER_URL,
    ROOT,
    manage,
    production_env,
    require,
)

pytestmark = pytest.mark.services

SETUP = """
import hashlib, io, json
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from samapp.models import Image
from samapp.services.projects import project_create

owner = get_user_model().objects.create_user(username="scale-owner", password="{password}")
project = project_create(name="scale-out", created_by=owner, labels=[("shape", "#ff0000")])
buffer = io.BytesIO()
PILImage.new("RGB", (16, 12), (3, 4, 5)).save(buffer, format="PNG")
content = buffer.getvalue()
image = Image(project=project, original_name="a.png", sha256=hashlib.sha256(content).hexdigest(),
              format="PNG", width=16, height=12, uploaded_by=owner)
image.file.save("a.png", ContentFile(content), save=False)
image.save()
print(json.dumps({{"project": project.pk, "image": image.pk}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited: {process.communicate()[0]}")
        try:
            requests.get(base + "/api/me/", timeout=10)
            return
        except requests.RequestException:  # not listening yet, or its first answer is slow
            time.sleep(0.3)
    raise AssertionError(f"{base} did not answer within {timeout} s")


@pytest.fixture
def two_web_processes(pg_migrated: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    require("Redis", REDIS)
    password = uuid.uuid4().hex
    env = production_env(
        pg_migrated,
        tmp_path / "data",
        REDIS_URL=REDIS_LAYER_URL,
        # A channel-layer namespace of its own on the shared Redis.
        CHANNEL_LAYER_PREFIX=f"scaletest-{uuid.uuid4().hex[:8]}",
        # Nothing is enqueued here; a broker no worker reads keeps the other tests' apart.
        CELERY_BROKER_URL="memory://",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_DB_POOL_MAX_SIZE="4",
    )
    created = json.loads(
        manage(env, "shell", "-c", SETUP.format(password=password)).stdout.strip().splitlines()[-1]
    )
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "backend.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process in zip(bases, processes, strict=True):
            wait_until_serving(base, process)
        yield {"bases": bases, "password": password, **created}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_a_write_through_one_process_reaches_a_socket_on_the_other(
    two_web_processes: dict[str, Any],
) -> None:
    import asyncio

    import websockets

    first, second = two_web_processes["bases"]
    project, image = two_web_processes["project"], two_web_processes["image"]
    login = requests.post(
        first + "/api/auth/token/",
        json={"username": "scale-owner", "password": two_web_processes["password"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    headers = {"Authorization": f"Token {token}"}

    socket_url = second.replace("http", "ws", 1) + f"/ws/projects/{project}/?token={token}"
    async with websockets.connect(socket_url, origin="http://localhost") as listener:
        hello = json.loads(await asyncio.wait_for(listener.recv(), timeout=10))
        assert hello["event"] == "hello"

        started = time.monotonic()
        response = await asyncio.to_thread(
            requests.post,
            first + f"/api/projects/{project}/images/{image}/annotations/",
            json={"rle": rle_box(12, 16, (2, 2, 9, 7))},
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        created = response.json()

        while True:
            message = json.loads(await asyncio.wait_for(listener.recv(), timeout=10))
            if message["event"] == "annotation.created":
                break
        delivered_after = time.monotonic() - started
        assert message["payload"]["id"] == created["id"]
        print(f"write through process 1 -> socket on process 2: {delivered_after * 1000:.0f} ms")

    # The other process reads the same database: the write is there, not sticky to its origin.
    listed = requests.get(
        second + f"/api/projects/{project}/images/{image}/annotations/",
        headers=headers,
        timeout=10,
    )
    assert listed.status_code == 200
    body = listed.json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [row["id"] for row in rows] == [created["id"]]
