"""Third-party script and content policy: /api/docs/ loads Swagger UI from our own static
files (drf-spectacular-sidecar) with no inline script, and with the production settings the
docs and the schema need a signed-in user. Every page (the SPA, sign-in, admin, docs) carries
a Content-Security-Policy that allows scripts from this origin only, plus WebAssembly
compilation and same-origin workers for the browser decoder; style elements need the
response's nonce."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.staticfiles import finders

from tests.security.profiles import profile

__all__ = ["profile"]

pytestmark = pytest.mark.django_db


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: bytes) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html.decode())
    return parser.found


def policy(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def assert_strict(response: Any) -> None:
    """The policy, and the page obeying it: scripts from files (or JSON data), styles from
    files or with the nonce."""
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert set(directives["worker-src"]) <= {"'self'", "blob:"}
    for name, sources in directives.items():
        assert "*" not in sources, name
        assert "'unsafe-eval'" not in sources, name
        assert not any(source.startswith(("http:", "https:")) for source in sources), name
        if name != "style-src-attr":
            assert "'unsafe-inline'" not in sources, name
    nonces = [s for s in directives["style-src"] if s.startswith("'nonce-")]
    for tag, attrs in elements(response.content):
        if tag == "script":
            assert attrs.get("src") or attrs.get("type") == "application/json", attrs
        if tag == "style":
            assert f"'nonce-{attrs.get('nonce')}'" in nonces, attrs


def test_the_spa_and_its_sign_in_page(client: Any, users: dict[str, Any]) -> None:
    sign_in = client.get("/accounts/login/?next=/")
    assert sign_in.status_code == 200
    assert_strict(sign_in)
    client.force_login(users["annotator"])
    spa = client.get("/projects/1/images/2")
    assert spa.status_code == 200
    assert_strict(spa)


def test_the_admin(client: Any, django_user_model: Any) -> None:
    admin = django_user_model.objects.create_superuser("root", password="pw-root-x")
    assert_strict(client.get("/admin/login/"))
    client.force_login(admin)
    for url in ("/admin/", "/admin/samapp/project/", "/admin/samapp/project/add/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)


def test_the_docs_load_only_our_own_static_files(client: Any, users: dict[str, Any]) -> None:
    client.force_login(users["viewer"])
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert_strict(page)
    urls = [
        attrs.get("src") or attrs.get("href")
        for tag, attrs in elements(page.content)
        if tag in ("script", "link")
    ]
    assert len(urls) >= 4, urls
    for url in urls:
        assert url, url
        assert url.startswith("/"), url
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/").split("?")[0]), url
    assert not re.search(rb"https?://", page.content)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"/api/schema/" in script.content


def test_docs_and_schema_need_a_signed_in_user_in_production(
    client: Any, users: dict[str, Any], profile: dict[str, Any]
) -> None:
    production = bool(profile)
    for url in ("/api/docs/", "/api/docs/?script=", "/api/schema/"):
        anonymous = client.get(url, **profile)
        assert anonymous.status_code == (403 if production else 200), url
    client.force_login(users["viewer"])
    for url in ("/api/docs/", "/api/schema/"):
        assert client.get(url, **profile).status_code == 200, url
