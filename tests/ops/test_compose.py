"""docker-compose.yml: the production profile's services, queues, web tier and GPU reservation.

The file is checked as YAML here always, and by `docker compose config` where the compose
client is installed (this machine kind has the docker CLI without the compose plugin)."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV = {
    "DJANGO_SECRET_KEY": "compose-test-" + "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "sam.example.com",
    "POSTGRES_PASSWORD": "compose-test",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def command_of(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_services_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("proxy", "web", "worker-gpu", "worker", "postgres", "redis", "minio", "migrate"):
        assert name in services, name
    for name in ("pgdata", "redisdata", "samdata", "caddydata"):
        assert name in compose["volumes"]


def test_web_runs_the_asgi_app_after_migrations(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert "uvicorn backend.asgi:application" in command_of(web)
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in web
    env = web["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "backend.settings.production"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")  # required, no default


def test_web_tier_scales_out_behind_the_proxy(compose: dict[str, Any]) -> None:
    """Several replicas of several ASGI processes each; only the proxy publishes ports."""
    web = compose["services"]["web"]
    assert "--workers $${WEB_WORKERS}" in command_of(web)
    assert web["environment"]["WEB_WORKERS"] == "${WEB_WORKERS:-2}"
    assert web["deploy"]["replicas"] == "${WEB_REPLICAS:-2}"
    assert "ports" not in web  # a fixed host port would stop `--scale web=N`
    proxy = compose["services"]["proxy"]
    assert proxy["build"]["target"] == "proxy"
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    caddyfile = compose["configs"]["caddyfile"]["content"]
    assert [c["source"] for c in proxy["configs"]] == ["caddyfile"]
    # Static files from the proxy's own copy; /ws/ and the rest balanced over every replica,
    # found by DNS (so a scaled-up replica joins without a restart).
    assert "handle /static/*" in caddyfile
    assert "file_server" in caddyfile
    assert "path /ws/*" in caddyfile
    assert caddyfile.count("dynamic a {") == 2
    assert caddyfile.count("name web") == 2
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AS proxy" in dockerfile
    assert "COPY --from=app /app/staticfiles /srv/static" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1] == "FROM app"  # `docker build .` = the app


def test_gpu_worker_takes_the_embeddings_queue_on_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["worker-gpu"]
    command = command_of(gpu)
    assert "celery -A backend worker" in command
    assert "-Q embeddings " in command + " "
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert gpu["environment"]["SAM_DEVICE"] == "cuda"


def test_cpu_worker_takes_the_other_queues(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "celery -A backend worker" in command_of(worker)
    assert worker["environment"]["WORKER_QUEUES"] == "${WORKER_QUEUES:-default}"
    assert "deploy" not in worker


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name != "migrate":
            assert "healthcheck" in service, name
    assert compose["services"]["minio"]["profiles"] == ["s3"]  # optional


def compose_client() -> list[str] | None:
    """Compose v2 (the file uses its syntax): the docker plugin or the standalone binary."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for client in candidates:
        probe = subprocess.run(
            [*client, "version", "--short"], capture_output=True, text=True, timeout=60
        )
        major = probe.stdout.strip().lstrip("v").split(".")[0]
        if probe.returncode == 0 and major.isdigit() and int(major) >= 2:
            return client
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    client = compose_client()
    if client is None:
        pytest.skip(
            "no Compose v2 client: neither the `docker compose` plugin nor a v2 "
            "`docker-compose` is installed (the YAML checks above still ran)"
        )
    env = {**os.environ, **ENV}
    done = subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "--profile", "s3", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Without the secret key, compose refuses to render the file.
    env.pop("DJANGO_SECRET_KEY")
    done = subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "--env-file", os.devnull, "config", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
