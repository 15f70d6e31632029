"""Writes for API tokens (django-rest-knox's, model ApiToken) and the revocations that close
open websockets: logout, revoke one or all, password change, deactivation."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from samapp.models import ApiToken
from samapp.realtime.events import notify_user

# last_used is written at most once per this interval per token (one UPDATE, not per request).
LAST_USED_PRECISION = timedelta(minutes=1)


def session_fingerprint(session_key: str) -> str:
    """What a revocation message names a session by: never the key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()


def user_sockets_recheck(
    *, user_id: int, revoked_session: str | None = None, revoked_token: int | None = None
) -> None:
    """Once committed, every open socket of the user re-checks its access; a socket that used
    the revoked session (its key) or token (its id) closes without asking the database."""
    payload: dict[str, object] = {
        "revoked_session": session_fingerprint(revoked_session) if revoked_session else None,
        "revoked_token": revoked_token,
    }
    transaction.on_commit(
        lambda: notify_user(user_id=user_id, message_type="access.changed", payload=payload)
    )


@transaction.atomic
def api_token_create(*, user: AbstractBaseUser) -> tuple[ApiToken, str]:
    """A new token for the user (every login gets its own), valid for REST_KNOX's TOKEN_TTL.
    The user's expired tokens are deleted, and past SAM_TOKEN_LIMIT_PER_USER the oldest live
    ones are revoked. Returns the token and its secret, which is shown only this once."""
    now = timezone.now()
    tokens = ApiToken.objects.filter(user_id=user.pk)
    tokens.filter(expiry__lte=now).delete()
    keep = settings.SAM_TOKEN_LIMIT_PER_USER - 1
    for oldest in tokens.filter(Q(expiry__gt=now) | Q(expiry__isnull=True))[keep:]:
        api_token_revoke(token=oldest)
    created: tuple[ApiToken, str] = ApiToken.objects.create(user=user)
    return created


def api_token_touch(*, token: ApiToken) -> None:
    """Record a use of the token, to LAST_USED_PRECISION."""
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_PRECISION:
        token.last_used = now
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)


def api_token_revoke(*, token: ApiToken) -> None:
    """Delete the token; sockets opened with it close."""
    user_id, token_id = token.user_id, token.pk
    token.delete()
    user_sockets_recheck(user_id=user_id, revoked_token=token_id)


def api_tokens_revoke_all(*, user_id: int) -> int:
    """Delete every token of the user; sockets opened with them close. Returns how many."""
    deleted: tuple[int, dict[str, int]] = ApiToken.objects.filter(user_id=user_id).delete()
    user_sockets_recheck(user_id=user_id)
    return deleted[0]
