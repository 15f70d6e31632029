"""Self sign-up (`/accounts/signup/`) in its three modes (`SAM_SIGNUP`), its refusals, its
per-IP throttle, and the invitations a new account takes over."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from samapp.models import Invitation, Membership
from samapp.selectors.projects import INVITATION_TTL
from samapp.services.invitations import invitation_create

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-enough-passphrase-7"


@pytest.fixture(autouse=True)
def fresh_throttle(settings: Any) -> None:
    settings.SAM_SIGNUP = "open"
    settings.SAM_SIGNUP_RATE = "100/hour"
    cache.clear()


def _form(username: str = "dora", email: str = "dora@example.com", **extra: str) -> dict[str, str]:
    return {
        "username": username,
        "email": email,
        "password1": PASSWORD,
        "password2": PASSWORD,
        **extra,
    }


def _invite(project: Any, identifier: str) -> None:
    owner = Membership.objects.get(project=project, user__username="owner")
    invitation_create(project=project, identifier=identifier, role="annotator", inviter=owner)


def test_open_signup_creates_an_account_and_signs_it_in() -> None:
    client = Client()
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert b'name="password2"' in page.content
    response = client.post("/accounts/signup/", _form())
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = get_user_model().objects.get(username="dora")
    assert user.email == "dora@example.com"
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    assert user.check_password(PASSWORD)
    assert client.get("/").status_code == 200  # signed in: the shell, not the login page


def test_the_login_page_links_to_signup_unless_closed(settings: Any) -> None:
    assert b'href="/accounts/signup/"' in Client().get("/accounts/login/").content
    settings.SAM_SIGNUP = "closed"
    assert b"/accounts/signup/" not in Client().get("/accounts/login/").content


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password2": "something-else-9"}, "password2", "match"),
        ({"password1": "123456", "password2": "123456"}, "password2", "too common"),
        ({"password1": "dora-Example", "password2": "dora-Example"}, "password2", "too similar"),
        ({"email": "not-an-address"}, "email", "valid email"),
        ({"username": "bad name!"}, "username", "Enter a valid username"),
        ({"username": "u" * 151}, "username", "at most 150"),
        ({"email": "d" * 250 + "@example.com"}, "email", "at most 254"),
        ({"password1": "p" * 1025, "password2": "p" * 1025}, "password1", "at most 1024"),
    ],
)
def test_bad_input_is_refused_at_its_field(
    fields: dict[str, str], field: str, message: str
) -> None:
    response = Client().post("/accounts/signup/", _form(**fields))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in e for e in errors[field]), errors
    # The message is tied to its input for assistive technology.
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="id_{field}"', html), html
    assert not get_user_model().objects.filter(email="dora@example.com").exists()


def test_a_taken_username_or_email_is_refused(users: dict[str, Any]) -> None:
    users["owner"].email = "owner@example.com"
    users["owner"].save()
    taken_name = Client().post("/accounts/signup/", _form(username="OWNER"))
    assert taken_name.status_code == 400
    assert "already exists" in str(taken_name.context["form"].errors["username"])
    taken_mail = Client().post("/accounts/signup/", _form(email="Owner@Example.com"))
    assert taken_mail.status_code == 400
    assert "e-mail address exists" in str(taken_mail.context["form"].errors["email"])
    assert get_user_model().objects.filter(username__in=["dora", "OWNER"]).count() == 0


def test_closed_signup_refuses_everything(settings: Any) -> None:
    settings.SAM_SIGNUP = "closed"
    page = Client().get("/accounts/signup/")
    assert page.status_code == 403
    assert b"Sign-up is closed here" in page.content
    assert Client().post("/accounts/signup/", _form()).status_code == 403
    assert not get_user_model().objects.filter(username="dora").exists()


def test_invite_mode_needs_a_pending_invitation_to_the_address(settings: Any, project: Any) -> None:
    settings.SAM_SIGNUP = "invite"
    assert b"needs an invitation" in Client().get("/accounts/signup/").content
    refused = Client().post("/accounts/signup/", _form())
    assert refused.status_code == 403
    assert "no project has invited" in str(refused.context["form"].errors["email"])
    # An invitation by username does not open sign-up to any address.
    _invite(project, "dora")
    assert Client().post("/accounts/signup/", _form()).status_code == 403
    # An expired one does not either.
    _invite(project, "dora@example.com")
    Invitation.objects.filter(identifier="dora@example.com").update(
        created_at=timezone.now() - INVITATION_TTL - timedelta(minutes=1)
    )
    assert Client().post("/accounts/signup/", _form()).status_code == 403
    _invite(project, "Dora@Example.com")
    assert Client().post("/accounts/signup/", _form(email="DORA@example.com")).status_code == 302
    assert get_user_model().objects.filter(username="dora").exists()


def test_the_new_account_sees_its_invitations_and_accepts(project: Any) -> None:
    _invite(project, "dora@example.com")
    _invite(project, "dora")  # by the username she is about to take
    assert Invitation.objects.filter(project=project, invitee__isnull=True).count() == 2
    client = Client()
    assert client.post("/accounts/signup/", _form()).status_code == 302
    mine = client.get("/api/invitations/").json()
    rows = mine["results"] if isinstance(mine, dict) else mine
    assert {row["project"]["name"] for row in rows} == {project.name}
    assert len(rows) == 2
    accepted = client.post(f"/api/invitations/{rows[0]['id']}/")
    assert accepted.status_code in (200, 201), accepted.content
    assert Membership.objects.get(project=project, user__username="dora").role == "annotator"


def test_invitations_to_other_addresses_stay_unclaimed(project: Any) -> None:
    _invite(project, "someone-else@example.com")
    assert Client().post("/accounts/signup/", _form()).status_code == 302
    assert Invitation.objects.get(identifier="someone-else@example.com").invitee is None


def test_attempts_are_throttled_per_ip(settings: Any) -> None:
    settings.SAM_SIGNUP_RATE = "3/hour"
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        assert client.post("/accounts/signup/", _form(email="bad")).status_code == 400
    throttled = client.post("/accounts/signup/", _form())
    assert throttled.status_code == 429
    assert b"Too many sign-up attempts" in throttled.content
    assert not get_user_model().objects.filter(username="dora").exists()
    # Another address is not held back.
    assert Client(REMOTE_ADDR="203.0.113.8").post("/accounts/signup/", _form()).status_code == 302
