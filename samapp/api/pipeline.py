"""Embeddings, browser decoders, segment-everything jobs and bulk review."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField, job_option_field
from samapp.api.permissions import ProjectScopedMixin
from samapp.models import Embedding, Image, ReviewState, SegmentJob
from samapp.roles import Capability
from samapp.selectors.embeddings import (
    embedding_get_visible,
    embedding_is_packed,
    embedding_read,
    embedding_status_payload,
)
from samapp.selectors.job_options import job_options
from samapp.selectors.model_versions import model_key_visible
from samapp.services.decoders import decoder_file_get, decoder_state
from samapp.services.embeddings import embedding_request
from samapp.services.model_runtime import DecoderUnavailableError
from samapp.services.reviews import MAX_REASON_CHARS, annotations_review
from samapp.services.segment import segment_job_payload, segment_job_start

IMMUTABLE = "private, max-age=31536000, immutable"
DTYPES = {"fp16": "float16", "int8": "int8"}
PENDING_DETAIL = {
    "downloading": "The model is being downloaded; its decoder is prepared right after.",
    "exporting": "The model's browser decoder is being prepared.",
}


def _not_modified(request: Request, etag: str) -> bool:
    tags = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    return etag in tags or "*" in tags


def _cached_bytes(request: Request, etag: str, body: bytes | None, **headers: str) -> HttpResponse:
    if _not_modified(request, etag):
        response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = HttpResponse(body, content_type="application/octet-stream")
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE
    response["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


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
        body = (
            None if _not_modified(request, etag) else embedding_read(embedding=embedding, fmt=fmt)
        )
        return _cached_bytes(
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


def _manifest_output(manifest: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings

    key = manifest["model_key"]
    default = settings.SAM_DECODER_DEFAULT_VARIANT
    if default not in manifest["variants"]:
        default = next(iter(manifest["variants"]))

    def file_output(entry: dict[str, Any]) -> dict[str, Any]:
        filename = entry["filename"]
        return {
            "url": reverse("decoder-file", kwargs={"model_key": key, "filename": filename}),
            "sha256": entry["sha256"],
            "bytes": entry["bytes"],
            "inputs": entry["inputs"],
            "outputs": entry["outputs"],
        }

    variants = {}
    for name, variant in manifest["variants"].items():
        output = {
            **file_output(variant),
            "low_res": variant["low_res"],
            "single_mask": variant["single_mask"],
            "int8": variant["int8"],
        }
        if "prepare" in variant:  # a two-graph fast variant (samapp.ml.fast_decoder)
            output["prepare"] = file_output(variant["prepare"])
            output["mask_input_variant"] = variant["mask_input_variant"]
        if "parity" in variant:  # a lossy variant's agreement with the exact decoder
            output["parity"] = variant["parity"]
        variants[name] = output
    return {
        "model_key": key,
        "img_size": manifest["image_size"],
        "embedding_shape": [1, *manifest["embedding_shape"]],
        "mask_input_size": manifest["mask_input_size"],
        "default_variant": default,
        "variants": variants,
        # Lossy variants that failed their parity probe: {variant: {"reason", "parity"}}.
        "rejected": manifest.get("rejected", {}),
        # "sam2": the graphs also take the high-resolution maps of the packed embedding
        # ({input name: [C, h, w]}) and append SAM 2's padding point themselves.
        "family": manifest.get("family", "sam"),
        "extra_inputs": manifest.get("extra_inputs", {}),
    }


class DecoderManifestApi(APIView):
    """Which browser decoder files exist for a model; the first request starts the export."""

    @extend_schema(
        operation_id="models_decoder_manifest", responses={200: dict, 202: dict, 404: dict}
    )
    def get(self, request: Request, model_key: str) -> Response:
        if not model_key_visible(user=request.user, model_key=model_key):
            raise Http404("No such model.")  # another project's fine-tuned version
        try:
            state, manifest = decoder_state(model_key=model_key)
        except DecoderUnavailableError as exc:
            return Response({"detail": str(exc), "status": "absent"}, status=404)
        if manifest is None:
            # An expected wait, not an error: the page shows the state and asks again.
            return Response(
                {"detail": PENDING_DETAIL[state], "status": state},
                status=status.HTTP_202_ACCEPTED,
                headers={"Retry-After": "2"},
            )
        return Response(_manifest_output(manifest))


class DecoderFileApi(APIView):
    @extend_schema(
        operation_id="models_decoder_file", responses={(200, "application/octet-stream"): bytes}
    )
    def get(self, request: Request, model_key: str, filename: str) -> HttpResponse:
        if not model_key_visible(user=request.user, model_key=model_key):
            raise Http404("No such decoder file.")
        found = decoder_file_get(model_key=model_key, filename=filename)
        if found is None:
            raise Http404("No such decoder file.")
        variant, path = found
        etag = f'"{variant["sha256"]}"'
        body = None
        if not _not_modified(request, etag):
            with default_storage.open(path, "rb") as handle:
                body = handle.read()
        return _cached_bytes(request, etag, body)


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


class SegmentEverythingApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.ANNOTATE}

    class InputSerializer(serializers.Serializer[Any]):
        points_per_side = job_option_field("auto_points_per_side")
        pred_iou_thresh = job_option_field("auto_pred_iou_thresh")
        stability_score_thresh = job_option_field("auto_stability_score_thresh")
        min_mask_region_area = job_option_field("auto_min_mask_region_area")

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request: Request, project_id: int, image_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        image = get_object_or_404(
            Image.objects.select_related("project"), project=self.project, pk=image_id
        )
        job = segment_job_start(
            image=image,
            user=self.user,
            options=dict(serializer.validated_data),
        )
        job.refresh_from_db()
        return Response(segment_job_payload(job), status=status.HTTP_202_ACCEPTED)


class JobOptionOutput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["int", "float"])
    min = serializers.FloatField()
    max = serializers.FloatField()
    default = serializers.FloatField(
        allow_null=True, help_text="What a job uses when the request leaves the option out."
    )


class JobOptionsOutput(serializers.Serializer[Any]):
    segment = serializers.DictField(child=JobOptionOutput())
    export = serializers.DictField(child=JobOptionOutput())


class JobOptionsApi(ProjectScopedMixin, APIView):
    @extend_schema(
        responses=JobOptionsOutput,
        description="The options of segment everything (`segment`, by request key) and of "
        "exports (`export`): the bounds the API enforces and this project's defaults.",
    )
    def get(self, request: Request, project_id: int) -> Response:
        return Response(JobOptionsOutput(job_options(project=self.project)).data)


class SegmentJobDetailApi(ProjectScopedMixin, APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = get_object_or_404(SegmentJob, project=self.project, pk=job_id)
        return Response(segment_job_payload(job))


class AnnotationReviewApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.REVIEW}

    class InputSerializer(serializers.Serializer[Any]):
        ids = serializers.ListField(child=IdField(), allow_empty=False)
        review_state = serializers.ChoiceField(
            choices=[ReviewState.ACCEPTED.value, ReviewState.REJECTED.value]
        )
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=MAX_REASON_CHARS,
            help_text="Shown to the annotations' authors (e.g. why they were rejected).",
        )

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = annotations_review(
            project=self.project,
            reviewer=self.user,
            **serializer.validated_data,
        )
        return Response(result)
