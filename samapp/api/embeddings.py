"""Embeddings: an image's embedding state (opening an image raises its priority) and the
stored blobs."""

from typing import Any

from django.http import Http404, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.caching import cached_bytes, not_modified
from samapp.api.permissions import ProjectScopedMixin
from samapp.models import Embedding, Image
from samapp.selectors.embeddings import (
    embedding_get_visible,
    embedding_is_packed,
    embedding_read,
    embedding_status_payload,
)
from samapp.services.embeddings import embedding_request

DTYPES = {"fp16": "float16", "int8": "int8"}


def _etag(embedding: Embedding, fmt: str) -> str:
    # The storage name carries a hash of the fp16 bytes: a recompute with other weights
    # changes the tag.
    digest = embedding.storage_path.rsplit("/", 1)[-1].split(".")[1]
    return f'"{embedding.image_sha256[:16]}-{digest}-{embedding.model_key}-{fmt}"'


class EmbeddingFileApi(APIView):
    """An image embedding: fp16 (1, C, H, W) little-endian, or int8 (C float32 per-channel
    scales, then C*H*W int8). For SAM 2 (``X-Embedding-Layout: packed``) the body packs its
    three feature maps behind a JSON header (layout in samapp.ml.sam2_embedding); the shape
    header is the image embedding's. Immutable: the URL is (model, content) addressed."""

    class FilterSerializer(serializers.Serializer[Any]):
        dtype = serializers.ChoiceField(choices=list(DTYPES), default="fp16")

    @extend_schema(
        parameters=[OpenApiParameter("dtype", str, enum=list(DTYPES))],
        responses={(200, "application/octet-stream"): bytes, 409: dict},
    )
    def get(self, request: Request, model_key: str, sha256: str) -> HttpResponseBase:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        fmt = filters.validated_data["dtype"]
        embedding = embedding_get_visible(user=request.user, model_key=model_key, sha256=sha256)
        if embedding is None:
            raise Http404("No such embedding.")
        if embedding.status != "ready":
            return JsonResponse(
                embedding_status_payload(embedding=embedding, model_key=model_key, sha256=sha256),
                status=status.HTTP_409_CONFLICT,
            )
        etag = _etag(embedding, fmt)
        body = None if not_modified(request, etag) else embedding_read(embedding=embedding, fmt=fmt)
        return cached_bytes(
            request,
            etag,
            body,
            X_Embedding_Shape=",".join(str(n) for n in embedding.shape),
            X_Embedding_Dtype=DTYPES[fmt],
            X_Input_Size=",".join(str(n) for n in embedding.input_size),
            X_Original_Size=",".join(str(n) for n in embedding.original_size),
            X_Model_Key=embedding.model_key,
            X_Embedding_Layout="packed" if embedding_is_packed(embedding=embedding) else "raw",
        )


class ImageEmbeddingApi(ProjectScopedMixin, APIView):
    """(Re)request an image's embedding: it jumps the queue; the next images are pre-encoded."""

    @extend_schema(request=None, responses=dict)
    def post(self, request: Request, project_id: int, image_id: int) -> Response:
        image = get_object_or_404(
            Image.objects.select_related("project"), project=self.project, pk=image_id
        )
        embedding = embedding_request(image=image, user=self.user)
        return Response(
            embedding_status_payload(
                embedding=embedding, model_key=embedding.model_key, sha256=image.sha256
            )
        )
