"""`account_signup`: the modes, and which pending invitations a new account takes over."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from samapp.errors import ApplicationError, PermissionDeniedError
from samapp.models import Invitation
from samapp.selectors.projects import INVITATION_TTL, invitation_list_for_user
from samapp.services.accounts import account_signup

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-enough-passphrase-7"


def _invitation(project: Any, identifier: str, **fields: Any) -> Invitation:
    return Invitation.objects.create(
        project=project, identifier=identifier, role="viewer", **fields
    )


def test_closed_mode_creates_nothing(settings: Any) -> None:
    settings.SAM_SIGNUP = "closed"
    with pytest.raises(PermissionDeniedError, match="closed"):
        account_signup(username="dora", email="dora@example.com", password=PASSWORD)


def test_a_new_account_takes_over_only_its_own_live_unclaimed_invitations(
    settings: Any, project: Any, other_project: Any, users: dict[str, Any]
) -> None:
    settings.SAM_SIGNUP = "open"
    by_mail = _invitation(project, "dora@example.com")
    by_name = _invitation(other_project, "dora")
    expired = _invitation(other_project, "dora@example.com")
    Invitation.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - INVITATION_TTL - timedelta(seconds=1)
    )
    someone_elses = _invitation(project, "dora", invitee=users["viewer"])
    user = account_signup(username="dora", email="Dora@Example.com", password=PASSWORD)
    assert set(invitation_list_for_user(user=user)) == {by_mail, by_name}
    someone_elses.refresh_from_db()
    assert someone_elses.invitee == users["viewer"]
    expired.refresh_from_db()
    assert expired.invitee is None


def test_invite_mode_needs_an_invitation_to_the_address(settings: Any, project: Any) -> None:
    settings.SAM_SIGNUP = "invite"
    _invitation(project, "dora")
    with pytest.raises(PermissionDeniedError, match="needs an invitation"):
        account_signup(username="dora", email="dora@example.com", password=PASSWORD)
    _invitation(project, "dora@example.com")
    user = account_signup(username="dora", email="dora@example.com", password=PASSWORD)
    assert invitation_list_for_user(user=user).count() == 2


def test_an_address_already_in_use_is_refused(settings: Any, users: dict[str, Any]) -> None:
    settings.SAM_SIGNUP = "open"
    users["owner"].email = "owner@example.com"
    users["owner"].save()
    with pytest.raises(ApplicationError, match="e-mail address exists") as refused:
        account_signup(username="dora", email="OWNER@example.com", password=PASSWORD)
    assert refused.value.extra == {"field": "email"}
