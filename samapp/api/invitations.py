"""Invitations, from both sides: a project's managers see and revoke the pending ones; the
invited user lists theirs and accepts or declines; a member leaves a project."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin, signed_in_user
from samapp.models import Invitation, Membership
from samapp.roles import Capability
from samapp.selectors.projects import (
    INVITATION_TTL,
    invitation_list_for_project,
    invitation_list_for_user,
)
from samapp.services.invitations import (
    invitation_accept,
    invitation_decline,
    invitation_revoke,
)
from samapp.services.projects import member_remove

INVITATION_SENT = {"detail": "Invitation sent if the user exists."}


class InvitationSentOutput(serializers.Serializer[Any]):
    detail = serializers.CharField()


class InvitationOutput(serializers.ModelSerializer[Invitation]):
    """A pending invitation as its project's managers see it: the identifier they typed
    (whether it names an account is not shown)."""

    invited_by = serializers.CharField(source="invited_by.username", default=None)
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields: tuple[str, ...] = (
            "id",
            "identifier",
            "role",
            "invited_by",
            "created_at",
            "expires_at",
        )

    def get_expires_at(self, invitation: Invitation) -> str:
        return (invitation.created_at + INVITATION_TTL).isoformat()


class ProjectSummary(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MyInvitationOutput(InvitationOutput):
    """A pending invitation as the invited user sees it."""

    project = ProjectSummary()

    class Meta(InvitationOutput.Meta):
        fields = ("id", "project", "role", "invited_by", "created_at", "expires_at")


class JoinedOutput(serializers.ModelSerializer[Membership]):
    class Meta:
        model = Membership
        fields = ("project", "role")


class ProjectInvitationListApi(ProjectScopedMixin, APIView):
    capabilities = {"GET": Capability.MANAGE}

    @extend_schema(responses=InvitationOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        invitations = invitation_list_for_project(project=self.project)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(invitations, request, self)
        return paginator.get_paginated_response(InvitationOutput(page, many=True).data)


class ProjectInvitationDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"GET": Capability.MANAGE, "DELETE": Capability.MANAGE}

    def _invitation(self, invitation_id: int) -> Invitation:
        return get_object_or_404(
            invitation_list_for_project(project=self.project), pk=invitation_id
        )

    @extend_schema(responses=InvitationOutput)
    def get(self, request: Request, project_id: int, invitation_id: int) -> Response:
        return Response(InvitationOutput(self._invitation(invitation_id)).data)

    @extend_schema(responses={204: None}, description="Revoke a pending invitation.")
    def delete(self, request: Request, project_id: int, invitation_id: int) -> Response:
        invitation_revoke(invitation=self._invitation(invitation_id), actor=self.membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectLeaveApi(ProjectScopedMixin, APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        description="Leave the project (any member). The last owner cannot leave: make "
        "another member an owner first.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        member_remove(membership=self.membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationListApi(APIView):
    @extend_schema(responses=MyInvitationOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            invitation_list_for_user(user=request.user), request, self
        )
        return paginator.get_paginated_response(MyInvitationOutput(page, many=True).data)


class MyInvitationDetailApi(APIView):
    def _invitation(self, request: Request, invitation_id: int) -> Invitation:
        return get_object_or_404(invitation_list_for_user(user=request.user), pk=invitation_id)

    @extend_schema(responses=MyInvitationOutput)
    def get(self, request: Request, invitation_id: int) -> Response:
        return Response(MyInvitationOutput(self._invitation(request, invitation_id)).data)

    @extend_schema(
        request=None,
        responses={200: JoinedOutput},
        description="Accept: you become a member with the offered role.",
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        membership = invitation_accept(
            invitation=self._invitation(request, invitation_id),
            user=signed_in_user(request),
        )
        return Response(JoinedOutput(membership).data)

    @extend_schema(responses={204: None}, description="Decline the invitation.")
    def delete(self, request: Request, invitation_id: int) -> Response:
        invitation_decline(
            invitation=self._invitation(request, invitation_id),
            user=signed_in_user(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
