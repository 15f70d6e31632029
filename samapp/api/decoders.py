"""Browser decoders: each model's export manifest and its content-hashed ONNX files."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.caching import PENDING_DETAIL, cached_bytes, not_modified
from samapp.selectors.model_versions import model_key_visible
from samapp.services.decoders import decoder_file_get, decoder_state
from samapp.services.model_runtime import DecoderUnavailableError


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
        if "prepare" in variant:  # a two-graph fast variant (ml.fast_decoder, ml.sam2_fast)
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
        # The onnxruntime level the graphs are already optimised at ("basic"; "" for none):
        # the browser does not optimise them again.
        "offline_optimization": manifest.get("offline_optimization", ""),
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
        if not not_modified(request, etag):
            with default_storage.open(path, "rb") as handle:
                body = handle.read()
        return cached_bytes(request, etag, body)
