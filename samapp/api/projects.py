"""Projects, members and labels."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField
from samapp.api.invitations import INVITATION_SENT, InvitationSentOutput
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin, signed_in_user
from samapp.errors import ApplicationError
from samapp.models import Label, Membership, Project, ReviewPolicy, Role
from samapp.roles import Capability
from samapp.selectors.models import project_pending_model_key
from samapp.selectors.projects import (
    image_status_counts,
    label_list,
    label_list_with_counts,
    membership_list,
    membership_roles,
    project_list,
)
from samapp.services.invitations import MAX_IDENTIFIER_CHARS, invitation_create
from samapp.services.job_limits import project_settings_bounds
from samapp.services.projects import (
    MAX_LABELS,
    LabelAnnotations,
    label_create,
    label_delete,
    label_update,
    member_remove,
    member_update,
    project_create,
    project_delete,
    project_update,
)

MAX_DESCRIPTION_CHARS = 10_000


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


class LabelInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7, required=False, default="#ff0000")


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


class MemberOutput(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "user", "username", "role")


class MemberListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    @extend_schema_serializer(component_name="MemberInvite")
    class InputSerializer(serializers.Serializer[Any]):
        username = serializers.CharField(
            max_length=MAX_IDENTIFIER_CHARS, help_text="A username or an e-mail address."
        )
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(membership_list(project=self.project), request, self)
        return paginator.get_paginated_response(MemberOutput(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={202: InvitationSentOutput},
        description="Invite a username or e-mail address with a role. The answer is the same "
        "whether or not that names an account (and for current members): the invited user "
        "becomes a member only by accepting (`POST /api/invitations/{id}/`).",
    )
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invitation_create(
            project=self.project,
            identifier=data["username"],
            role=data["role"],
            inviter=self.membership,
        )
        return Response(INVITATION_SENT, status=status.HTTP_202_ACCEPTED)


class MemberDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"PATCH": Capability.MANAGE, "DELETE": Capability.MANAGE}

    @extend_schema_serializer(component_name="MemberUpdate")
    class InputSerializer(serializers.Serializer[Any]):
        role = serializers.ChoiceField(choices=Role.choices)

    def _membership(self, member_id: int) -> Membership:
        return get_object_or_404(membership_list(project=self.project), pk=member_id)

    @extend_schema(responses=MemberOutput)
    def get(self, request: Request, project_id: int, member_id: int) -> Response:
        return Response(MemberOutput(self._membership(member_id)).data)

    @extend_schema(request=InputSerializer, responses=MemberOutput)
    def patch(self, request: Request, project_id: int, member_id: int) -> Response:
        membership = self._membership(member_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member_update(
            membership=membership, role=serializer.validated_data["role"], actor=self.membership
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, member_id: int) -> Response:
        membership = self._membership(member_id)
        member_remove(membership=membership, actor=self.membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
