"""Token authentication for websockets (`?token=` query), beside Channels' session auth."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed


@database_sync_to_async
def _authenticate(key: str) -> tuple[Any, Any]:
    from samapp.api.authentication import ApiTokenAuthentication

    try:
        credentials: tuple[Any, Any] = ApiTokenAuthentication().authenticate_credentials(
            key.encode()
        )
    except AuthenticationFailed:
        return AnonymousUser(), None
    return credentials


class TokenAuthMiddleware:
    """With `?token=`, the scope's user is the token's (the same checks as the REST API) and
    ``scope["api_token"]`` the token, whose revocation or expiry closes the socket."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode())
        keys = query.get("token")
        if keys:
            user, token = await _authenticate(keys[0])
            scope = {**scope, "user": user, "api_token": token}
        # A copy, as Channels' middlewares pass it: the inner app may add keys of its own.
        return await self.inner(dict(scope), receive, send)
