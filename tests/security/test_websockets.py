"""The project room websocket against hostile clients, timed: anonymous, a foreign Origin
(with a valid session), no Origin, a member of another project, a member removed mid-session
(closed within 1 s, and hears nothing afterwards)."""

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from samapp.models import Membership
from samapp.realtime.events import broadcast
from samapp.services.projects import member_remove
from tests.fixtures import drain, receive_until

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 1.0  # seconds: refused or closed within this


async def _open(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any, float]:
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    started = time.perf_counter()
    connected, _ = await communicator.connect(timeout=5)
    if connected:  # accepted at the handshake? it must close at once, before any event
        message = await communicator.receive_output(timeout=5)
        assert message["type"] == "websocket.close", message
        connected = False
    return connected, communicator, time.perf_counter() - started


async def _session_cookie(client: Any, user: Any) -> bytes:
    await sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize("case", ["anonymous", "bad-token", "foreign-origin", "no-origin"])
async def test_refused_within_a_second(case, project, users, client, token_for) -> None:
    token = await sync_to_async(token_for)("annotator")
    cookie = await _session_cookie(client, users["annotator"])
    path = f"/ws/projects/{project.id}/"
    headers = [(b"origin", b"http://localhost")]
    if case == "bad-token":
        path += "?token=" + "0" * 40
    elif case == "foreign-origin":  # a valid session and token, from another site
        path += f"?token={token}"
        headers = [(b"origin", b"https://evil.example"), (b"cookie", cookie)]
    elif case == "no-origin":
        path += f"?token={token}"
        headers = [(b"cookie", cookie)]
    connected, communicator, elapsed = await _open(path, headers)
    if case == "no-origin" and connected:
        pytest.fail("a socket without Origin was accepted")
    assert not connected
    assert elapsed < LIMIT, f"{case}: {elapsed:.3f}s"
    await communicator.disconnect()


async def test_member_of_another_project_is_refused(project, other_project, token_for) -> None:
    token = await sync_to_async(token_for)("annotator")  # member of project, not other_project
    connected, communicator, elapsed = await _open(
        f"/ws/projects/{other_project.id}/?token={token}", [(b"origin", b"http://localhost")]
    )
    assert not connected
    assert elapsed < LIMIT
    await communicator.disconnect()


async def test_removed_member_is_closed_within_a_second_and_hears_nothing(
    connect, project, users
) -> None:
    connected, socket = await connect(project.id, "extra")
    assert connected
    await receive_until(socket, "hello")
    await drain(socket)
    membership = await sync_to_async(Membership.objects.get)(project=project, user=users["extra"])
    started = time.perf_counter()
    await sync_to_async(member_remove)(membership=membership)
    events = []
    while True:
        message = await socket.receive_output(timeout=LIMIT)
        if message["type"] == "websocket.close":
            break
        events.append(message)
    elapsed = time.perf_counter() - started
    assert message["code"] == 4404
    assert elapsed < LIMIT, f"closed after {elapsed:.3f}s"
    # Whatever happens in the project now, the closed socket receives nothing.
    await sync_to_async(broadcast)(project_id=project.id, event="job.progress", payload={"x": 1})
    leaked = []
    while not await socket.receive_nothing(timeout=0.3):
        leaked.append(await socket.receive_output())
    assert leaked == []
    print(f"removed member closed after {elapsed * 1000:.0f} ms")


async def test_no_cross_project_event_leak(connect, project, other_project) -> None:
    _, stranger = await connect(other_project.id, "outsider")
    await receive_until(stranger, "hello")
    await drain(stranger)
    for event in ("annotation.created", "embedding.ready", "job.progress", "presence"):
        await sync_to_async(broadcast)(project_id=project.id, event=event, payload={"s": 1})
    assert [m for m in await drain(stranger, timeout=0.3) if m["payload"] == {"s": 1}] == []
    await stranger.disconnect()
