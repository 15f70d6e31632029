"""API token authentication: django-rest-knox's (hashed tokens with an expiry), recording
when each token was last used."""

from typing import Any

from django.utils import timezone
from knox.auth import TokenAuthentication

from samapp.services.api_tokens import api_token_touch


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token sam_…``. An expired token is deleted on sight (knox); an
    inactive user's token is refused."""

    def _cleanup_token(self, auth_token: Any) -> bool:
        # knox's own also reads all the user's other tokens on every request, to delete the
        # expired ones among them: a query per request. `api_token_create` deletes a user's
        # expired tokens and an expired token is deleted when it is presented, so only the
        # presented token is checked here.
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token: Any) -> tuple[Any, Any]:
        user, token = super().validate_user(auth_token)
        api_token_touch(token=token)
        return user, token
