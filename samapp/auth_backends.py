"""Login lockout (django-axes) for every password check that comes from a request."""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginLockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check, first in AUTHENTICATION_BACKENDS: the token endpoint, the web and
    admin logins all pass their request, so repeated failures lock the username + client out.

    A password check without a request (server-side code: management commands, the test
    client's ``login``) comes from no network client and has nothing to lock out: it passes
    through instead of raising axes' "request required" error."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        super().authenticate(request, username=username, password=password, **kwargs)
        return None
