"""Project labels: list, create, rename, recolour, delete."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin
from samapp.errors import ApplicationError
from samapp.models import Label
from samapp.roles import Capability
from samapp.selectors.projects import (
    label_list,
    label_list_with_counts,
)
from samapp.services.projects import (
    LabelAnnotations,
    label_create,
    label_delete,
    label_update,
)


class LabelOutput(serializers.ModelSerializer[Label]):
    class Meta:
        model = Label
        fields: tuple[str, ...] = ("id", "name", "color")


class LabelCountOutput(LabelOutput):
    annotation_count = serializers.IntegerField(
        read_only=True, help_text="How many annotations carry this label."
    )

    class Meta(LabelOutput.Meta):
        fields = ("id", "name", "color", "annotation_count")


class LabelInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7, required=False, default="#ff0000")


class LabelListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    @extend_schema_serializer(component_name="LabelCreate")
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=100)
        color = serializers.CharField(max_length=7, required=False, default="#ff0000")

    @extend_schema(responses=LabelCountOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        paginator = StandardPagination()
        labels = label_list_with_counts(project=self.project)
        page = paginator.paginate_queryset(labels, request, self)
        return paginator.get_paginated_response(LabelCountOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: LabelOutput})
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label = label_create(project=self.project, **serializer.validated_data)
        return Response(LabelOutput(label).data, status=status.HTTP_201_CREATED)


class LabelDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"PATCH": Capability.MANAGE, "DELETE": Capability.MANAGE}

    @extend_schema_serializer(component_name="LabelUpdate")
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=100, required=False)
        color = serializers.CharField(max_length=7, required=False)

    def _label(self, label_id: int) -> Label:
        return get_object_or_404(label_list(project=self.project), pk=label_id)

    @extend_schema(responses=LabelOutput)
    def get(self, request: Request, project_id: int, label_id: int) -> Response:
        return Response(LabelOutput(self._label(label_id)).data)

    @extend_schema(request=InputSerializer, responses=LabelOutput)
    def patch(self, request: Request, project_id: int, label_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        label = label_update(label=self._label(label_id), **serializer.validated_data)
        return Response(LabelOutput(label).data)

    class DeleteQuery(serializers.Serializer[Any]):
        annotations = serializers.ChoiceField(
            choices=LabelAnnotations.CHOICES,
            required=False,
            help_text="What becomes of the annotations that carry the label: 'reassign' "
            "(to `reassign_to`), 'unlabel' (kept without a label) or 'delete'. Required when "
            "any do.",
        )
        reassign_to = IdField(
            required=False, help_text="The label that takes over the annotations."
        )

    @extend_schema(
        parameters=[DeleteQuery],
        responses={204: None},
        description="Delete a label. While annotations carry it the answer is 409 with "
        "`annotation_count`, unless `annotations` says what to do with them.",
    )
    def delete(self, request: Request, project_id: int, label_id: int) -> Response:
        label = self._label(label_id)
        query = self.DeleteQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        target_id = query.validated_data.get("reassign_to")
        target = None
        if target_id is not None:
            target = label_list(project=self.project).filter(pk=target_id).first()
            if target is None:
                raise ApplicationError(f"reassign_to: this project has no label {target_id}.")
        label_delete(
            label=label, annotations=query.validated_data.get("annotations"), reassign_to=target
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
