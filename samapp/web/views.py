"""The single-page app shell: a Django template that loads the built front end.

The bundle lives in ``static/app/`` (built by ``npm run build`` in ``frontend/`` and
committed). File names are fixed, so the shell appends a content hash as a query string to
bust caches; the hash is computed once per process.
"""

import hashlib
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie

from samapp.services.accounts import SignupMode, signup_mode

APP_DIR = Path(settings.BASE_DIR) / "static" / "app"


@cache
def _asset_version(name: str) -> str:
    path = APP_DIR / name
    if not path.exists():
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _webgpu_available() -> bool:
    """The WebGPU build of onnxruntime-web is optional (``SAM_WEBGPU=1 npm run build``)."""
    return (APP_DIR / "ort" / "ort-wasm-simd-threaded.asyncify.wasm").exists()


@login_required
@ensure_csrf_cookie
def spa(request: HttpRequest, path: str = "") -> HttpResponse:
    config = {
        "user": {"id": request.user.pk, "username": request.user.get_username()},
        "wasmPaths": static("app/ort/"),
        "webgpu": _webgpu_available(),
        "logoutUrl": "/accounts/logout/",
        # Files up to one chunk go in one request; bigger ones through /uploads/ in chunks.
        "uploadChunkBytes": settings.SAM_UPLOAD_CHUNK_BYTES,
    }
    context = {
        "script": static("app/app.js") + "?v=" + _asset_version("app.js"),
        "style": static("app/app.css") + "?v=" + _asset_version("app.css"),
        "config": config,
        "bundle_missing": not (APP_DIR / "app.js").exists(),
    }
    return render(request, "web/spa.html", context)


class LoginPage(LoginView):
    """Django's login view; the page links to sign-up unless `SAM_SIGNUP` is `closed`."""

    template_name = "registration/login.html"

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        context["signup_open"] = signup_mode() != SignupMode.CLOSED
        return context
