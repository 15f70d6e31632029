"""The two profiles the security tests run in: the embedded/test settings as they are, and
the production settings module applied over them in-process (what it sets for DEBUG,
cookies, HSTS, the https redirect, API docs access...; not its database, storage or
secrets, which come from the environment)."""

import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings


def fuzz_settings(max_examples: int) -> hypothesis_settings:
    """Hypothesis settings of the API fuzz tests: no deadline (a noisy machine), no example
    database, no health checks (the fixtures make the data)."""
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# Settings the production module sets from the environment or for its own storage; the rest
# of what it sets (DEBUG, cookies, HSTS, SSL redirect, CSP, docs access...) is applied.
NOT_APPLIED = {
    "DATABASES",
    "DATA_DIR",
    "STATIC_ROOT",
    "MEDIA_ROOT",
    "STORAGES",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CELERY_TASK_ALWAYS_EAGER",
    "CHANNEL_LAYERS",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_TRANSPORT_OPTIONS",
    "CELERY_BROKER_SPOOL",
    "PASSWORD_HASHERS",
    "LOGGING",
}


def production_overrides() -> dict[str, Any]:
    """The settings of backend.settings.production that differ from the running profile."""
    env = {
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "sqlite:///unused.sqlite3",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        sys.modules.pop("backend.settings.production", None)
        module = importlib.import_module("backend.settings.production")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
        sys.modules.pop("backend.settings.production", None)
    return {
        name: getattr(module, name)
        for name in dir(module)
        if name.isupper()
        and name not in NOT_APPLIED
        and getattr(module, name) != getattr(settings, name, object())
    }


@pytest.fixture(params=["embedded", "production"])
def profile(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Client options for the profile: the production one is served over https."""
    if request.param == "embedded":
        yield {}
        return
    overrides = production_overrides()
    assert overrides["SECURE_SSL_REDIRECT"] is True
    assert overrides["SESSION_COOKIE_SECURE"]
    assert overrides.get("DEBUG", settings.DEBUG) is False
    with override_settings(**overrides):
        yield {"secure": True}
