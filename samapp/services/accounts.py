"""Self sign-up, gated by `SAM_SIGNUP`: `open` (anyone), `invite` (only an e-mail address a
project has a pending invitation for) or `closed` (accounts come from staff only).

Invitations made before their invitee had an account name no one (see
`samapp.services.invitations`); a new account takes over the pending ones made to its e-mail
address or its username, so they show up on its projects page at once. E-mail addresses are
not verified (the embedded profile sends no mail): whoever signs up first with an address
gets the invitations made to it."""

from enum import StrEnum

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import Invitation
from samapp.selectors.projects import invitation_expiry_cutoff


class SignupMode(StrEnum):
    OPEN = "open"
    INVITE = "invite"
    CLOSED = "closed"


def signup_mode() -> SignupMode:
    """`SAM_SIGNUP`, read at each call (settings may change under tests)."""
    return SignupMode(settings.SAM_SIGNUP)


def _unclaimed_invitations(*, email: str, username: str) -> QuerySet[Invitation]:
    named = Q(identifier=email.lower()) if email else Q(pk__in=[])
    return Invitation.objects.filter(
        named | Q(identifier=username),
        invitee__isnull=True,
        created_at__gte=invitation_expiry_cutoff(),
    )


def account_signup(*, username: str, email: str, password: str) -> User:
    """A new active account (no staff rights) that takes over the pending invitations made to
    `email` or `username`. The caller has validated the fields (the password against
    `AUTH_PASSWORD_VALIDATORS`, the username and e-mail as free)."""
    mode = signup_mode()
    if mode == SignupMode.CLOSED:
        raise PermissionDeniedError("Sign-up is closed here: ask an administrator for an account.")
    users = get_user_model().objects
    if users.filter(email__iexact=email).exists():
        raise ApplicationError(
            "An account with this e-mail address exists already.", extra={"field": "email"}
        )
    with transaction.atomic():
        pending = _unclaimed_invitations(email=email, username=username)
        if mode == SignupMode.INVITE and not pending.filter(identifier=email.lower()).exists():
            raise PermissionDeniedError(
                "Sign-up here needs an invitation: no project has invited this e-mail address.",
                extra={"field": "email"},
            )
        try:
            with transaction.atomic():
                user = users.create_user(username=username, email=email, password=password)
        except IntegrityError:
            raise ApplicationError(
                "A user with that username already exists.", extra={"field": "username"}
            ) from None
        pending.update(invitee=user)
    return user
