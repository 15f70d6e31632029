"""Registry models on this server: their availability and checkpoint downloads.

Every signed-in user reads the list (the page shows what a model switch would need); staff
and the owners and managers of any project start a download (one per model at a time)."""

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.permissions import signed_in_user
from samapp.ml.registry import MODELS
from samapp.selectors.models import model_state_payload, models_list
from samapp.services.model_downloads import model_download_allowed, model_download_start


def _known(model_key: str) -> str:
    if model_key not in MODELS:
        raise Http404("No such model.")
    return model_key


class ModelListApi(APIView):
    @extend_schema(operation_id="models_list", responses=dict)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "results": models_list(),
                "default_model": settings.SAM_DEFAULT_MODEL,
                "can_download": model_download_allowed(user=signed_in_user(request)),
            }
        )


class ModelDetailApi(APIView):
    @extend_schema(operation_id="models_detail", responses=dict)
    def get(self, request: Request, model_key: str) -> Response:
        return Response(model_state_payload(model_key=_known(model_key)))


class ModelDownloadApi(APIView):
    @extend_schema(operation_id="models_download", request=None, responses={202: dict})
    def post(self, request: Request, model_key: str) -> Response:
        model_download_start(model_key=_known(model_key), user=signed_in_user(request))
        return Response(model_state_payload(model_key=model_key), status=status.HTTP_202_ACCEPTED)
