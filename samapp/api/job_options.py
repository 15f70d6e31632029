"""Job options: the bounds and project defaults of segment everything and of exports."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.permissions import ProjectScopedMixin
from samapp.selectors.job_options import job_options


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
