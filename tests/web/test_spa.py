"""The single-page app shell and the login page: auth, cross-origin isolation, config."""

import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="sam-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the shell has no config block"
    return json.loads(match.group(1))


def test_anonymous_is_sent_to_login() -> None:
    response = Client().get("/projects/3/images/4")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/projects/3/images/4")


def test_login_page_is_cross_origin_isolated() -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_login_then_shell(users: dict[str, Any]) -> None:
    client = Client()
    user = users["annotator"]
    user.set_password("pw-annotator-1")
    user.save()
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": "pw-annotator-1", "next": "/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    for path in ("/", "/projects/1", "/projects/1/images/2", "/projects/1/review"):
        shell = client.get(path)
        assert shell.status_code == 200, path
        assert shell["Cross-Origin-Opener-Policy"] == "same-origin"
        assert shell["Cross-Origin-Embedder-Policy"] == "require-corp"
        html = shell.content.decode()
        assert "<sam-app>" in html
        assert re.search(r'src="/static/app/app\.js\?v=\w+"', html)
        config = _config(html)
        assert config["user"] == {"id": user.pk, "username": user.username}
        assert config["wasmPaths"] == "/static/app/ort/"
        assert isinstance(config["webgpu"], bool)
        assert config["uploadChunkBytes"] == settings.SAM_UPLOAD_CHUNK_BYTES
    assert "csrftoken" in client.cookies


def test_wrong_password_shows_an_error(users: dict[str, Any]) -> None:
    response = Client().post(
        "/accounts/login/", {"username": users["annotator"].username, "password": "nope"}
    )
    assert response.status_code == 200
    assert b"Wrong username or password" in response.content


def test_logout_needs_post_and_returns_to_login(users: dict[str, Any]) -> None:
    client = Client()
    client.force_login(users["viewer"])
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_unknown_paths_are_not_swallowed_by_the_shell(users: dict[str, Any]) -> None:
    client = Client()
    client.force_login(users["viewer"])
    assert client.get("/nope/").status_code == 404
    assert client.get("/api/nope/").status_code == 404


@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_the_decoder_worker_script_is_cross_origin_isolated() -> None:
    """The worker runs the threaded WASM: its script needs the same policies as the page."""
    workers = settings.BASE_DIR / "static" / "app" / "workers"
    script = next(workers.glob("decoder.worker-*.js")).name
    response = Client().get(f"/static/app/workers/{script}")
    assert response.status_code == 200
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
