"""Fixtures shared by the pipeline and realtime tests (imported by both conftests)."""

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a visible reason when a real service is down; fail instead under CI=true."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: real-service tests must run)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> None:
    """The in-memory channel layer (one process); the spool bridge has its own test."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def sam_random_fallback(settings: Any) -> None:
    """Random sam_tiny weights when the committed checkpoint is not there yet."""
    settings.SAM_RANDOM_INIT_FALLBACK = True


@pytest.fixture
def token_for(users: dict[str, Any]) -> Callable[[Any], str]:
    """``token_for(user_or_role_name)``: an API token's secret, one per user and test."""
    from tests.conftest import api_token_cache

    return api_token_cache(users)


@pytest.fixture
def connect(token_for: Callable[[Any], str]) -> Callable[..., Any]:
    """``await connect(project_id, who)`` -> (connected, communicator) through the real ASGI
    stack (origin validation, session + token auth, routing)."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    async def make(
        project_id: int, who: Any = None, origin: bytes = b"http://localhost"
    ) -> tuple[bool, WebsocketCommunicator]:
        query = ""
        if who is not None:
            query = "?token=" + await sync_to_async(token_for)(who)
        communicator = WebsocketCommunicator(
            application, f"/ws/projects/{project_id}/{query}", headers=[(b"origin", origin)]
        )
        connected, _ = await communicator.connect(timeout=5)
        return connected, communicator

    return make


async def receive_until(communicator: Any, event: str, timeout: float = 5) -> dict[str, Any]:
    """Skip other events until `event` arrives; returns its message."""
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["event"] == event:
            return message


async def drain(communicator: Any, timeout: float = 0.2) -> list[dict[str, Any]]:
    """Every message that arrives within `timeout` of the previous one."""
    messages = []
    while not await communicator.receive_nothing(timeout=timeout):
        messages.append(await communicator.receive_json_from())
    return messages


PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


@pytest.fixture
def pg_database_url() -> Any:
    """A throwaway, migrated Postgres database; yields its URL, drops it afterwards."""
    import subprocess
    import sys
    import uuid

    require_service("PostgreSQL", *PG)
    import psycopg

    name = f"samtest_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            env={
                **os.environ,
                "DATABASE_URL": url,
                "DJANGO_SETTINGS_MODULE": "backend.settings.test",
            },
            check=True,
            timeout=300,
        )
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def decoder_manifest(client: Any, capture_on_commit: Any, key: str = "sam_tiny") -> dict[str, Any]:
    """``key``'s decoder manifest as the workspace fetches it: the first request queues the
    export, which the (eager) task runs on commit, so a 202 ("exporting") is asked again once."""
    with capture_on_commit(execute=True):
        response = client.get(f"/api/models/{key}/decoder/")
    if response.status_code == 202:
        assert response.json()["status"] == "exporting"
        response = client.get(f"/api/models/{key}/decoder/")
    assert response.status_code == 200, response.content
    manifest: dict[str, Any] = response.json()
    return manifest
