"""`manage.py check --deploy` is clean under the production settings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "SAM_")) and key != "REDIS_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),  # 80 random characters
        DJANGO_ALLOWED_HOSTS="sam.example.com",
        DATABASE_URL="postgres://sam:secret@db.invalid:5432/sam",
        REDIS_URL="redis://redis.invalid:6379/0",
        SAM_DATA_DIR=str(tmp_path),
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_under_production_settings(tmp_path: Path) -> None:
    done = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    done = manage(env, "check")
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY" in done.stderr


def test_production_settings_use_the_configured_services(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL,"
        " s.CHANNEL_LAYERS['default']['BACKEND'], s.ALLOWED_HOSTS)"
    )
    done = manage(production_env(tmp_path), "shell", "-v", "0", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].split() == [
        "False",
        "django.db.backends.postgresql",
        "redis://redis.invalid:6379/0",
        "channels_redis.core.RedisChannelLayer",
        "['sam.example.com']",
    ]
