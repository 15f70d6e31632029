"""Login brute force (django-axes): after AXES_FAILURE_LIMIT wrong passwords for a username
from one client, every login path refuses that pair with 429, even with the right password;
concurrent guessing gets no more tries than the limit allows (plus at most the requests
already in flight when it was reached)."""

import threading
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "/api/auth/token/"
THREADS = 20


def token_attempt(username: str, password: str, ip: str = "10.0.0.1") -> int:
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR=ip)
    response = client.post(TOKEN, {"username": username, "password": password}, format="json")
    return response.status_code


def test_token_endpoint_locks_out_after_the_limit(users: dict[str, Any]) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    codes = [token_attempt("viewer", "wrong") for _ in range(limit + 2)]
    assert codes[: limit - 1] == [400] * (limit - 1)
    assert set(codes[limit - 1 :]) == {429}  # the limit-th failure locks
    assert token_attempt("viewer", "pw-viewer") == 429  # the right password no longer helps
    # Other users and other clients are not affected.
    assert token_attempt("reviewer", "pw-reviewer") == 200
    assert token_attempt("viewer", "pw-viewer", ip="10.0.0.2") == 200


def test_success_resets_the_count(users: dict[str, Any]) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert token_attempt("viewer", "wrong") == 400
    assert token_attempt("viewer", "pw-viewer") == 200
    for _ in range(limit - 1):
        assert token_attempt("viewer", "wrong") == 400


def test_concurrent_guessing_is_bounded(users: dict[str, Any]) -> None:
    barrier = threading.Barrier(THREADS)
    codes: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def guess(index: int) -> None:
        from django.db import connection

        try:
            barrier.wait()
            for attempt in range(3):
                code = token_attempt("annotator", f"guess-{index}-{attempt}")
                with lock:
                    codes.append(code)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(codes) == THREADS * 3, codes
    assert set(codes) <= {400, 429}, codes
    checked = codes.count(400)  # requests whose password was actually tried
    print(f"{THREADS}x3 concurrent guesses: {checked} checked, {codes.count(429)} refused")
    assert checked <= settings.AXES_FAILURE_LIMIT + THREADS, checked
    assert codes.count(429) >= THREADS * 3 - settings.AXES_FAILURE_LIMIT - THREADS
    assert token_attempt("annotator", "pw-annotator") == 429


def test_web_and_admin_logins_share_the_lockout(users: dict[str, Any]) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token_attempt("manager", "wrong", ip="127.0.0.1")
    client = Client(REMOTE_ADDR="127.0.0.1")
    web = client.post("/accounts/login/", {"username": "manager", "password": "pw-manager"})
    assert web.status_code == 429
    admin = client.post("/admin/login/", {"username": "manager", "password": "pw-manager"})
    assert admin.status_code == 429
