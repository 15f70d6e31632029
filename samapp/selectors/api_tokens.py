"""Reads for API tokens and for the sockets that re-check the credential they were opened with."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from samapp.models import ApiToken


def api_token_list(*, user_id: int) -> QuerySet[ApiToken]:
    """The user's live tokens, newest first."""
    now = timezone.now()
    live: QuerySet[ApiToken] = ApiToken.objects.filter(user_id=user_id).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=now)
    )
    return live


def socket_credential_valid(*, user_id: int, token_id: int | None, session_key: str | None) -> bool:
    """Whether the token (by id) or else the session (by key) a socket was opened with still
    authenticates that active user: not revoked, expired, logged out, nor from before a
    password change (Django's session hash)."""
    if token_id is not None:
        return api_token_list(user_id=user_id).filter(pk=token_id, user__is_active=True).exists()
    if not session_key:
        return False
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    return user.is_authenticated and user.pk == user_id
