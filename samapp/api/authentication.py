"""API token authentication: django-rest-knox's (hashed tokens with an expiry), recording
when each token was last used."""

from typing import Any

from knox.auth import TokenAuthentication

from samapp.services.api_tokens import api_token_touch


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token sam_…``. An expired token is deleted on sight (knox); an
    inactive user's token is refused."""

    def validate_user(self, auth_token: Any) -> tuple[Any, Any]:
        user, token = super().validate_user(auth_token)
        api_token_touch(token=token)
        return user, token
