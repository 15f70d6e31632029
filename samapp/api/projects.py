"""Projects, members and labels."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.invitations import INVITATION_SENT, InvitationSentOutput
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin
from samapp.errors import PermissionDeniedError
from samapp.models import Label, Membership, Project, ReviewPolicy, Role
from samapp.roles import Capability, role_can
from samapp.selectors.models import project_pending_model_key
from samapp.selectors.projects import (
    image_status_counts,
    label_list,
    membership_list,
    membership_roles,
    project_list,
)
from samapp.services.invitations import MAX_IDENTIFIER_CHARS, invitation_create
from samapp.services.projects import (
    MAX_LABELS,
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
        fields = ("id", "name", "color")


class ProjectOutput(serializers.ModelSerializer[Project]):
    labels = LabelOutput(many=True, read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = (
            "id",
            "name",
            "description",
            "default_model_key",
            "review_policy",
            "settings",
            "labels",
            "role",
            "created_at",
        )

    def get_role(self, project: Project) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(project.id)


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
            created_by=request.user,  # type: ignore[arg-type]
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

    def _output(self) -> dict[str, Any]:
        data: dict[str, Any] = ProjectOutput(
            self.project, context={"roles": {self.project.id: self.membership.role}}
        ).data
        data["status_counts"] = image_status_counts(project=self.project)
        # The model the project switches to once its download completes (None: none).
        data["pending_model_key"] = project_pending_model_key(project=self.project)
        return data

    @extend_schema(responses=ProjectOutput)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(self._output())

    @extend_schema(request=InputSerializer, responses=ProjectOutput)
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


def _check_owner_role_change(view: ProjectScopedMixin, *roles: str) -> None:
    # Only owners hand out or take away ownership.
    if Role.OWNER in roles and not role_can(view.membership.role, Capability.OWN):
        raise PermissionDeniedError("Only an owner can grant or revoke the owner role.")


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
        _check_owner_role_change(self, membership.role, serializer.validated_data["role"])
        member_update(membership=membership, role=serializer.validated_data["role"])
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, member_id: int) -> Response:
        membership = self._membership(member_id)
        _check_owner_role_change(self, membership.role)
        member_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabelListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    @extend_schema_serializer(component_name="LabelCreate")
    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=100)
        color = serializers.CharField(max_length=7, required=False, default="#ff0000")

    @extend_schema(responses=LabelOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(label_list(project=self.project), request, self)
        return paginator.get_paginated_response(LabelOutput(page, many=True).data)

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

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, label_id: int) -> Response:
        label_delete(label=self._label(label_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
