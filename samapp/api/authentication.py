"""API token authentication: django-rest-knox's (hashed tokens with an expiry), recording
when each token was last used."""

import binascii
from hmac import compare_digest
from typing import Any

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from rest_framework.exceptions import AuthenticationFailed

from samapp.selectors.api_tokens import api_tokens_by_key
from samapp.services.api_tokens import api_token_touch


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token sam_…``. An expired token is deleted on sight (knox); an
    inactive user's token is refused."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        """knox's own, reading the candidate tokens through `api_tokens_by_key` (SQL compiled
        once: this lookup is on every API request)."""
        secret = token.decode("utf-8")
        for auth_token in api_tokens_by_key(token_key=secret[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(secret)
            except (TypeError, binascii.Error) as exc:
                raise AuthenticationFailed("Invalid token.") from exc
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise AuthenticationFailed("Invalid token.")

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
