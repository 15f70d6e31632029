"""Project-scoped access: non-members get 404, roles gate each method."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import Http404
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from samapp.api.fields import MAX_ID
from samapp.errors import PermissionDeniedError
from samapp.roles import Capability, role_can
from samapp.selectors.projects import membership_get


class ProjectScopedMixin:
    """For views under /projects/<project_id>/: resolves the membership once per request.

    `capabilities` maps HTTP methods to the capability they need; reads need VIEW."""

    capabilities: dict[str, Capability] = {}
    user: User  # the signed-in member making the request (`request.user` may be anonymous)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # An id no database can hold matches nothing: 404 here, not a driver error later.
        if any(isinstance(value, int) and value > MAX_ID for value in kwargs.values()):
            raise Http404("No such object.")
        user = request.user
        membership = membership_get(project_id=int(kwargs["project_id"]), user=user)
        if membership is None or not isinstance(user, User):
            raise Http404("No such project.")
        self.user = user
        self.membership = membership
        self.project = membership.project
        needed = self.capabilities.get(request.method or "GET", Capability.VIEW)
        self.require(needed)

    def require(self, capability: Capability) -> None:
        if not role_can(self.membership.role, capability):
            raise PermissionDeniedError(
                f"Your role ({self.membership.role}) cannot {capability.value} in this project."
            )


def signed_in_user(request: Request) -> User:
    """The request's user, for views whose permission classes already refused anonymous
    requests (IsAuthenticated)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user


class ApiDocsAccess(BasePermission):
    """The OpenAPI schema and its Swagger UI: public where SAM_API_DOCS_PUBLIC, else only
    for signed-in users (read at each request, so the setting applies without a restart)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(settings.SAM_API_DOCS_PUBLIC or request.user.is_authenticated)
