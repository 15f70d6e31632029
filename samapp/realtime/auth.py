"""Token authentication for websockets (`?token=` query), beside Channels' session auth."""

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed


@database_sync_to_async
def _authenticate(key: str) -> tuple[Any, Any]:
    from samapp.api.authentication import ApiTokenAuthentication

    try:
        return ApiTokenAuthentication().authenticate_credentials(key.encode())
    except AuthenticationFailed:
        return AnonymousUser(), None


class TokenAuthMiddleware(BaseMiddleware):
    """With `?token=`, the scope's user is the token's (the same checks as the REST API) and
    ``scope["api_token"]`` the token, whose revocation or expiry closes the socket."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode())
        keys = query.get("token")
        if keys:
            scope["user"], scope["api_token"] = await _authenticate(keys[0])
        return await super().__call__(scope, receive, send)
