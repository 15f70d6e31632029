"""Open project sockets lose access with their user: deactivation, deletion, a password
change, logout, a revoked or expired token and a removed membership each close a socket
(session- or token-authenticated) within a second, and a change made behind the signals'
back (a bulk UPDATE) is caught by the periodic re-check. Each test prints how long the close
took."""

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from samapp.models import Membership
from samapp.realtime.events import broadcast
from samapp.services.projects import member_remove, member_update
from tests.fixtures import drain, receive_until

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 1.0  # seconds: closed within this
ORIGIN = (b"origin", b"http://localhost")
CLOSE_UNAUTHENTICATED, CLOSE_NOT_MEMBER = 4401, 4404


async def _open(project_id: int, *, token: str | None = None, cookie: bytes | None = None) -> Any:
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    query = f"?token={token}" if token else ""
    socket = WebsocketCommunicator(application, f"/ws/projects/{project_id}/{query}", headers)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await receive_until(socket, "hello")
    await drain(socket)
    return socket


async def _closed_after(socket: Any, action: Callable[[], Awaitable[Any]]) -> tuple[int, float]:
    """Run `action`, then wait (each message at most LIMIT apart) for the socket to close.
    Returns the close code and the seconds from the start of `action` to the close."""
    started = time.perf_counter()
    await action()
    while True:
        message = await socket.receive_output(timeout=LIMIT)
        if message["type"] == "websocket.close":
            return message["code"], time.perf_counter() - started


async def _hears_nothing_more(socket: Any, project_id: int) -> None:
    await sync_to_async(broadcast)(project_id=project_id, event="annotation.created", payload={})
    assert await socket.receive_nothing(timeout=0.3)


async def _new_token(user: Any, expires_in: timedelta | None = None) -> tuple[Any, str]:
    """A fresh API token of the user (its row and secret), expiring as configured or after
    `expires_in`."""
    from samapp.models import ApiToken
    from samapp.services.api_tokens import api_token_create

    if expires_in is None:
        return await sync_to_async(api_token_create)(user=user)
    return await sync_to_async(ApiToken.objects.create)(user, expires_in)


def _session_cookie(client: Any, user: Any) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def _deactivate(user: Any) -> None:
    user.is_active = False
    user.save()


def _delete(user: Any) -> None:
    user.delete()


def _change_password(user: Any) -> None:
    user.set_password("a-new-long-password")
    user.save()


@pytest.mark.parametrize("credential", ["token", "session"])
@pytest.mark.parametrize("change", ["deactivation", "deletion", "password"])
async def test_deactivation_deletion_or_password_change_closes_the_socket(
    project, users, client, token_for, credential, change
) -> None:
    user = users["annotator"]
    if credential == "token":
        socket = await _open(project.id, token=await sync_to_async(token_for)(user))
    else:
        socket = await _open(project.id, cookie=await sync_to_async(_session_cookie)(client, user))
    apply = {"deactivation": _deactivate, "deletion": _delete, "password": _change_password}[change]
    code, elapsed = await _closed_after(socket, sync_to_async(lambda: apply(user)))
    assert code == CLOSE_UNAUTHENTICATED
    await _hears_nothing_more(socket, project.id)
    print(f"{change} closed a {credential} socket after {elapsed * 1000:.0f} ms")


async def test_web_logout_closes_that_sessions_socket_only(project, users, client) -> None:
    user = users["annotator"]
    other_client = type(client)()
    logged_out = await _open(project.id, cookie=await sync_to_async(_session_cookie)(client, user))
    other = await _open(project.id, cookie=await sync_to_async(_session_cookie)(other_client, user))
    code, elapsed = await _closed_after(logged_out, sync_to_async(client.logout))
    assert code == CLOSE_UNAUTHENTICATED
    assert await other.receive_nothing(timeout=0.3)  # another session of the same user stays
    await other.disconnect()
    print(f"web logout closed its session's socket after {elapsed * 1000:.0f} ms")


async def test_token_logout_closes_that_tokens_socket_only(project, users) -> None:
    user = users["annotator"]
    used, kept = (await _new_token(user))[1], (await _new_token(user))[1]
    logged_out, other = await _open(project.id, token=used), await _open(project.id, token=kept)

    def logout() -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {used}")
        return api.post("/api/auth/logout/").status_code

    # The process's first request imports the URLconf and views (~0.3 s): not part of a close.
    await sync_to_async(APIClient().get)("/api/me/")

    async def action() -> None:
        assert await sync_to_async(logout)() == 204

    code, elapsed = await _closed_after(logged_out, action)
    assert code == CLOSE_UNAUTHENTICATED
    assert await other.receive_nothing(timeout=0.3)
    await other.disconnect()
    print(f"token logout closed its socket after {elapsed * 1000:.0f} ms")


async def test_revoking_the_token_closes_its_socket(project, users) -> None:
    user = users["annotator"]
    token, secret = await _new_token(user)
    manager = (await _new_token(user))[1]
    socket = await _open(project.id, token=secret)

    def revoke() -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {manager}")
        return api.delete(f"/api/auth/tokens/{token.pk}/").status_code

    async def action() -> None:
        assert await sync_to_async(revoke)() == 204

    code, elapsed = await _closed_after(socket, action)
    assert code == CLOSE_UNAUTHENTICATED
    print(f"token revocation closed its socket after {elapsed * 1000:.0f} ms")


async def test_an_expiring_token_closes_its_socket_when_it_expires(project, users) -> None:
    _, secret = await _new_token(users["annotator"], timedelta(seconds=0.5))
    socket = await _open(project.id, token=secret)

    async def nothing() -> None:
        pass

    code, elapsed = await _closed_after(socket, nothing)
    assert code == CLOSE_UNAUTHENTICATED
    print(f"a token expiring 0.5 s after issue closed its socket after {elapsed * 1000:.0f} ms")


async def test_a_role_change_that_keeps_access_keeps_the_socket(project, users, token_for) -> None:
    socket = await _open(project.id, token=await sync_to_async(token_for)("extra"))
    membership = await sync_to_async(Membership.objects.get)(project=project, user=users["extra"])
    owner = await sync_to_async(Membership.objects.get)(project=project, user=users["owner"])
    await sync_to_async(member_update)(membership=membership, role="viewer", actor=owner)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_membership_removed_closes_the_session_socket(project, users, client) -> None:
    user = users["extra"]
    socket = await _open(project.id, cookie=await sync_to_async(_session_cookie)(client, user))
    membership = await sync_to_async(Membership.objects.get)(project=project, user=user)
    code, elapsed = await _closed_after(
        socket, sync_to_async(lambda: member_remove(membership=membership))
    )
    assert code == CLOSE_NOT_MEMBER
    print(f"membership removal closed a session socket after {elapsed * 1000:.0f} ms")


@pytest.mark.parametrize("change", ["deactivation", "membership"])
async def test_the_periodic_recheck_catches_changes_made_without_signals(
    project, users, settings, token_for, change
) -> None:
    settings.SAM_SOCKET_RECHECK_SECONDS = 0.2
    user = users["extra"]
    socket = await _open(project.id, token=await sync_to_async(token_for)(user))

    def bulk_update() -> None:  # QuerySet.update/delete send no model signals
        if change == "deactivation":
            get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        else:
            Membership.objects.filter(project=project, user=user).delete()

    code, elapsed = await _closed_after(socket, sync_to_async(bulk_update))
    assert code == (CLOSE_UNAUTHENTICATED if change == "deactivation" else CLOSE_NOT_MEMBER)
    print(
        f"periodic re-check (every 0.2 s) closed after a bulk {change} in {elapsed * 1000:.0f} ms"
    )


@pytest.mark.parametrize("credential", ["token", "session"])
def test_a_recheck_is_a_few_indexed_queries(project, users, client, token_for, credential) -> None:
    """What each socket runs every SAM_SOCKET_RECHECK_SECONDS: the credential check and the
    membership lookup, a bounded number of queries whatever the number of tokens/members."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from samapp.selectors.api_tokens import socket_credential_valid
    from samapp.selectors.projects import membership_get

    user = users["annotator"]
    token_id, session_key = None, None
    if credential == "token":
        token_for(user)
        token_id = user.auth_token_set.get().pk
    else:
        _session_cookie(client, user)
        session_key = client.session.session_key
    with CaptureQueriesContext(connection) as queries:
        assert socket_credential_valid(user_id=user.pk, token_id=token_id, session_key=session_key)
        assert membership_get(project_id=project.id, user=user) is not None
    assert len(queries) <= 3, [q["sql"] for q in queries]
    print(f"{credential} re-check: {len(queries)} queries")
