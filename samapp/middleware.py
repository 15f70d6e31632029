"""Cross-origin isolation: onnxruntime-web needs SharedArrayBuffer for multi-threaded WASM.

Django's SecurityMiddleware sends the opener policy (`SECURE_CROSS_ORIGIN_OPENER_POLICY`);
this adds the embedder and resource policies, which Django has no setting for.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class CrossOriginIsolationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Cross-Origin-Embedder-Policy", "require-corp")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
