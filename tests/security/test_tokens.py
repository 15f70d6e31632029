"""API tokens as an attacker with a stolen token, or its owner, would try them: every login
issues a new token, stored only as a hash, that expires; its owner lists (never the secret)
and revokes one or all; logout revokes the token used; a password change or a deactivation
revokes them all; a user keeps a bounded number of live tokens."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
TOKEN = "/api/auth/token/"
# A refused token: DRF answers 403, not 401, when the first authenticator (the session's)
# sends no WWW-Authenticate challenge.
REFUSED = 403


def token_rows() -> Any:
    from samapp.models import ApiToken

    return ApiToken.objects


def login(username: str) -> dict[str, Any]:
    response = APIClient().post(
        TOKEN, {"username": username, "password": "pw-" + username}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def me(token: str) -> int:
    return client_with(token).get("/api/me/").status_code


def test_each_login_issues_a_new_token_stored_only_as_a_hash(users) -> None:
    first, second = login("viewer"), login("viewer")
    assert first["token"] != second["token"]
    assert first["id"] != second["id"]
    assert me(first["token"]) == me(second["token"]) == 200
    rows = list(token_rows().filter(user=users["viewer"]).values())
    assert len(rows) == 2
    stored = repr(rows)
    assert first["token"] not in stored
    assert second["token"] not in stored


def test_a_token_expires_after_the_configured_ttl(users, settings) -> None:
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=2)}
    before = timezone.now()
    issued = login("viewer")
    token = token_rows().get(pk=issued["id"])
    assert before + timedelta(hours=2) <= token.expiry <= timezone.now() + timedelta(hours=2)
    assert me(issued["token"]) == 200
    token_rows().filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert me(issued["token"]) == REFUSED
    assert not token_rows().filter(pk=token.pk).exists()  # deleted on sight


def test_logout_revokes_the_token_used_and_only_it(users) -> None:
    used, other = login("viewer"), login("viewer")
    assert client_with(used["token"]).post("/api/auth/logout/").status_code == 204
    assert me(used["token"]) == REFUSED
    assert me(other["token"]) == 200


def test_session_logout_through_the_api_ends_the_session(client, users) -> None:
    client.force_login(users["viewer"])
    assert client.get("/api/me/").status_code == 200
    assert client.post("/api/auth/logout/").status_code == 204
    assert client.get("/api/me/").status_code == REFUSED


def test_owner_lists_own_tokens_with_metadata_but_never_a_secret(users) -> None:
    first, current = login("viewer"), login("viewer")
    stranger = login("reviewer")
    client_with(first["token"]).get("/api/me/")  # records a use
    response = client_with(current["token"]).get("/api/auth/tokens/")
    assert response.status_code == 200
    listed = {row["id"]: row for row in response.json()}
    assert set(listed) == {first["id"], current["id"]}  # the reviewer's is not there
    for row in listed.values():
        assert set(row) == {"id", "created", "expiry", "last_used", "current"}
        assert row["expiry"] is not None
    assert listed[current["id"]]["current"]
    assert not listed[first["id"]]["current"]
    assert listed[first["id"]]["last_used"] is not None
    body = response.content.decode()
    for issued in (first, current, stranger):
        assert issued["token"] not in body
        assert issued["token"][:15] not in body  # not even knox's lookup prefix


def test_owner_revokes_one_token_and_no_one_elses(users) -> None:
    keep, revoke = login("viewer"), login("viewer")
    stranger = login("reviewer")
    owner = client_with(keep["token"])
    assert owner.get(f"/api/auth/tokens/{stranger['id']}/").status_code == 404
    assert owner.delete(f"/api/auth/tokens/{stranger['id']}/").status_code == 404
    shown = owner.get(f"/api/auth/tokens/{revoke['id']}/")
    assert shown.status_code == 200
    assert shown.json()["id"] == revoke["id"]
    assert revoke["token"] not in shown.content.decode()
    assert me(stranger["token"]) == 200
    assert owner.delete(f"/api/auth/tokens/{revoke['id']}/").status_code == 204
    assert me(revoke["token"]) == REFUSED
    assert me(keep["token"]) == 200
    assert owner.delete(f"/api/auth/tokens/{revoke['id']}/").status_code == 404


def test_owner_revokes_all_tokens(users) -> None:
    tokens = [login("viewer") for _ in range(3)]
    stranger = login("reviewer")
    response = client_with(tokens[0]["token"]).delete("/api/auth/tokens/")
    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    assert [me(t["token"]) for t in tokens] == [REFUSED] * 3
    assert me(stranger["token"]) == 200


@pytest.mark.parametrize("change", ["password", "deactivation"])
def test_password_change_and_deactivation_revoke_every_token(users, change) -> None:
    tokens = [login("viewer"), login("viewer")]
    stranger = login("reviewer")
    user = users["viewer"]
    if change == "password":
        user.set_password("a-new-long-password")
    else:
        user.is_active = False
    user.save()
    assert not token_rows().filter(user=user).exists()
    assert [me(t["token"]) for t in tokens] == [REFUSED] * 2
    if change == "deactivation":  # reactivating does not bring the old tokens back
        user.is_active = True
        user.save()
        assert me(tokens[0]["token"]) == REFUSED
    assert me(stranger["token"]) == 200


def test_an_unrelated_save_of_the_user_keeps_the_tokens(users) -> None:
    issued = login("viewer")
    user = users["viewer"]
    user.email = "viewer@example.com"
    user.save()
    assert me(issued["token"]) == 200


def test_a_user_keeps_a_bounded_number_of_live_tokens(users, settings) -> None:
    settings.SAM_TOKEN_LIMIT_PER_USER = 3
    tokens = [login("viewer") for _ in range(5)]
    assert token_rows().filter(user=users["viewer"]).count() == 3
    assert [me(t["token"]) for t in tokens] == [REFUSED, REFUSED, 200, 200, 200]  # oldest revoked


def test_admins_list_and_revoke_tokens_but_never_see_or_make_a_secret(users, admin_client) -> None:
    issued = login("viewer")
    listing = admin_client.get("/admin/samapp/apitoken/")
    assert listing.status_code == 200
    assert issued["token"] not in listing.content.decode()
    assert admin_client.get("/admin/samapp/apitoken/add/").status_code == 403
    assert admin_client.get("/admin/knox/authtoken/").status_code == 404  # swapped out
    response = admin_client.post(
        f"/admin/samapp/apitoken/{issued['id']}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert me(issued["token"]) == REFUSED
