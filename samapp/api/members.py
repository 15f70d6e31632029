"""Project members: list, invite (by username or e-mail), change roles, remove."""

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
from samapp.choices import Role
from samapp.models import Membership
from samapp.roles import Capability
from samapp.selectors.projects import (
    membership_list,
)
from samapp.services.invitations import MAX_IDENTIFIER_CHARS, invitation_create
from samapp.services.projects import (
    member_remove,
    member_update,
)


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
