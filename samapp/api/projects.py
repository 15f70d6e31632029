"""Projects: list, create, read, update, delete."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.labels import LabelInput, LabelOutput
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin, signed_in_user
from samapp.choices import ReviewPolicy, Role
from samapp.models import Project
from samapp.roles import Capability
from samapp.selectors.models import project_pending_model_key
from samapp.selectors.projects import (
    image_status_counts,
    membership_roles,
    project_list,
)
from samapp.services.job_limits import project_settings_bounds
from samapp.services.projects import (
    MAX_LABELS,
    project_create,
    project_delete,
    project_update,
)

MAX_DESCRIPTION_CHARS = 10_000


class ProjectOutput(serializers.ModelSerializer[Project]):
    labels = LabelOutput(many=True, read_only=True)
    role = serializers.SerializerMethodField()
    archived_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the project was archived; null: active."
    )

    class Meta:
        model = Project
        fields: tuple[str, ...] = (
            "id",
            "name",
            "description",
            "default_model_key",
            "review_policy",
            "settings",
            "labels",
            "role",
            "archived_at",
            "created_at",
        )

    def get_role(self, project: Project) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(project.id)


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberOutput(serializers.Field):  # type: ignore[type-arg]
    """A number as stored: an integer setting's bound stays an integer."""

    def to_representation(self, value: float) -> float:
        return value


class SettingBoundOutput(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["integer", "number"])
    minimum = NumberOutput()
    maximum = NumberOutput()


class ProjectDetailOutput(ProjectOutput):
    status_counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Images per status."
    )
    pending_model_key = serializers.CharField(
        allow_null=True,
        help_text="The model the project switches to once its download completes (null: none).",
    )
    settings_bounds = serializers.DictField(
        child=SettingBoundOutput(),
        help_text="Each key of `settings` with its type and inclusive bounds (PATCH checks them).",
    )

    class Meta(ProjectOutput.Meta):
        fields = (
            *ProjectOutput.Meta.fields,
            "status_counts",
            "pending_model_key",
            "settings_bounds",
        )


class ProjectListCreateApi(APIView):
    @extend_schema_serializer(component_name="ProjectCreate")
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=MAX_DESCRIPTION_CHARS
        )
        default_model_key = serializers.CharField(required=False, max_length=64)
        labels = serializers.ListField(child=LabelInput(), required=False, max_length=MAX_LABELS)
        review_policy = serializers.ChoiceField(
            choices=ReviewPolicy.choices,
            required=False,
            default=ReviewPolicy.PROPOSED,
            help_text="The review state an annotator's own work lands in: 'proposed' "
            "(pending review) or 'accepted'. Reviewers', managers' and owners' work is "
            "accepted.",
        )

        def validate_labels(self, labels: list[dict[str, str]]) -> list[dict[str, str]]:
            """Each repeated name is reported at its row, so a form can mark that field."""
            seen: set[str] = set()
            errors: list[dict[str, list[str]]] = []
            for item in labels:
                name = item["name"].strip()
                repeated = name in seen
                seen.add(name)
                errors.append({"name": [f"Another label is named {name!r}."]} if repeated else {})
            if any(errors):
                raise serializers.ValidationError(errors)
            return labels

    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request: Request) -> Response:
        projects = project_list(user=request.user).prefetch_related("labels")
        roles = membership_roles(user=request.user)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(projects, request, view=self)
        data = ProjectOutput(page, many=True, context={"roles": roles}).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=InputSerializer, responses={201: ProjectOutput})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        labels = [(item["name"], item["color"]) for item in data.get("labels", [])]
        project = project_create(
            name=data["name"],
            description=data["description"],
            default_model_key=data.get("default_model_key"),
            labels=labels,
            review_policy=data["review_policy"],
            created_by=signed_in_user(request),
        )
        output = ProjectOutput(project, context={"roles": {project.id: Role.OWNER}})
        return Response(output.data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"PATCH": Capability.MANAGE, "DELETE": Capability.OWN}

    @extend_schema_serializer(component_name="ProjectUpdate")
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(
            required=False, allow_blank=True, max_length=MAX_DESCRIPTION_CHARS
        )
        default_model_key = serializers.CharField(required=False, max_length=64)
        review_policy = serializers.ChoiceField(choices=ReviewPolicy.choices, required=False)
        settings = serializers.DictField(required=False)
        archived = serializers.BooleanField(
            required=False, help_text="true archives the project, false unarchives it."
        )

    def _output(self) -> dict[str, Any]:
        project = self.project
        project.status_counts = image_status_counts(project=project)  # type: ignore[attr-defined]
        project.pending_model_key = project_pending_model_key(project=project)  # type: ignore[attr-defined]
        project.settings_bounds = project_settings_bounds()  # type: ignore[attr-defined]
        output = ProjectDetailOutput(project, context={"roles": {project.id: self.membership.role}})
        return dict(output.data)

    @extend_schema(responses=ProjectDetailOutput)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(self._output())

    @extend_schema(request=InputSerializer, responses=ProjectDetailOutput)
    def patch(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project_update(project=self.project, data=dict(serializer.validated_data))
        return Response(self._output())

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int) -> Response:
        project_delete(project=self.project)
        return Response(status=status.HTTP_204_NO_CONTENT)
