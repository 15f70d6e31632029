"""The production path against the real PostgreSQL, Redis and RabbitMQ this machine runs.

A test here skips with a visible reason when its server does not answer; under CI=true it
fails instead, so a green CI always means the services tests ran.

Subprocesses (``manage.py``, the scenario script, Celery workers) run with the production
settings and a throwaway Postgres database, a temporary SAM_DATA_DIR and the env below.
"""

import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import connect, pg_database_url, token_for

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Databases of their own on the shared Redis, apart from the other test modules' ones.
REDIS_BROKER_URL = "redis://127.0.0.1:6379/14"
REDIS_LAYER_URL = "redis://127.0.0.1:6379/15"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, address: tuple[str, int]) -> None:
    """Skip (fail under CI=true) when the server ``name`` does not answer at ``address``."""
    if reachable(*address):
        return
    message = f"{name} does not answer at {address[0]}:{address[1]}"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message}; CI=true, so the production-path tests may not be skipped")
    pytest.skip(message)


def production_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a production-settings subprocess."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "SAM_")) and key not in ("REDIS_URL",)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1",
        DATABASE_URL=database_url,
        SAM_DATA_DIR=str(data_dir),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session; dropped afterwards."""
    require("PostgreSQL", POSTGRES)
    import psycopg

    name = f"samstudio_ops_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_migrated(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``pg_url`` after ``manage.py migrate`` under the production settings."""
    env = production_env(pg_url, tmp_path_factory.mktemp("pg-migrate"))
    manage(env, "migrate", "--noinput")
    return pg_url


def pg_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute(sql, params).fetchall()


def run_scenario(env: dict[str, str], *args: str, timeout: float = 300) -> dict:
    """Run tests/production/scenario.py in a subprocess; its last stdout line is JSON."""
    import json

    done = subprocess.run(
        [sys.executable, "-m", "tests.production.scenario", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"scenario {args}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# Shared with the in-process websocket tests; listed so that linters see them used.
__all__ = ["connect", "pg_database_url", "token_for"]
