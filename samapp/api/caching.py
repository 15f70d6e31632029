"""HTTP caching of stored blobs (embeddings, decoder files): ETags, 304s, immutable names."""

from django.http import HttpResponse
from rest_framework import status
from rest_framework.request import Request

IMMUTABLE = "private, max-age=31536000, immutable"


PENDING_DETAIL = {
    "downloading": "The model is being downloaded; its decoder is prepared right after.",
    "exporting": "The model's browser decoder is being prepared.",
}


def not_modified(request: Request, etag: str) -> bool:
    tags = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    return etag in tags or "*" in tags


def cached_bytes(request: Request, etag: str, body: bytes | None, **headers: str) -> HttpResponse:
    if not_modified(request, etag):
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = HttpResponse(body, content_type="application/octet-stream")
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE
    response["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
