"""Bulk review of annotations (accept, reject with a reason)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField
from samapp.api.permissions import ProjectScopedMixin
from samapp.choices import ReviewState
from samapp.roles import Capability
from samapp.services.reviews import MAX_REASON_CHARS, annotations_review


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
