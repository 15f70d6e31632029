"""The project room websocket: who may join, what they hear, presence and catch-up."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from samapp.models import Membership
from samapp.services.annotations import annotation_delete, annotation_update
from samapp.services.projects import member_remove
from tests.conftest import rle_box
from tests.fixtures import drain, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_is_refused(connect, project) -> None:
    connected, communicator = await connect(project.id)
    if connected:  # accepted at the handshake level? then it must close with 4401
        message = await communicator.receive_output()
        assert message == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_foreign_origin_is_refused(connect, project) -> None:
    connected, communicator = await connect(project.id, "annotator", origin=b"http://evil.test")
    assert not connected
    await communicator.disconnect()


async def test_non_member_is_refused(connect, project) -> None:
    connected, communicator = await connect(project.id, "outsider")
    assert not connected or (await communicator.receive_output())["code"] == 4404
    await communicator.disconnect()


async def test_unknown_token_is_refused(connect, project) -> None:
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    communicator = WebsocketCommunicator(
        application,
        f"/ws/projects/{project.id}/?token=nope",
        headers=[(b"origin", b"http://localhost")],
    )
    connected, code = await communicator.connect(timeout=5)
    assert not connected
    assert code == 4401
    await communicator.disconnect()


async def test_member_gets_hello_with_role_and_user(connect, project, users) -> None:
    connected, communicator = await connect(project.id, "reviewer")
    assert connected
    hello = await communicator.receive_json_from()
    assert hello["event"] == "hello"
    assert hello["payload"]["role"] == "reviewer"
    assert hello["payload"]["user"] == {"id": users["reviewer"].id, "username": "reviewer"}
    assert hello["payload"]["seq"] == 0
    await communicator.disconnect()


async def test_session_cookie_auth(project, users, client) -> None:
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application

    await sync_to_async(client.force_login)(users["viewer"])
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/projects/{project.id}/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_json_from())["payload"]["role"] == "viewer"
    await communicator.disconnect()


async def test_removal_from_the_project_closes_the_socket(connect, project, users) -> None:
    connected, communicator = await connect(project.id, "extra")
    assert connected
    membership = await sync_to_async(Membership.objects.get)(project=project, user=users["extra"])
    await sync_to_async(member_remove)(membership=membership)
    while True:
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            break
    assert message["code"] == 4404


async def test_presence_shows_who_is_on_which_image(connect, project, users) -> None:
    _, alice = await connect(project.id, "annotator")
    await receive_until(alice, "hello")
    _, bob = await connect(project.id, "reviewer")
    await receive_until(bob, "hello")
    await alice.send_json_to({"action": "presence", "image": 42})
    wanted = {"id": users["annotator"].id, "username": "annotator", "image": 42}
    for _ in range(10):
        presence = await receive_until(bob, "presence")
        if wanted in presence["payload"]["users"]:
            break
    assert wanted in presence["payload"]["users"]
    ids = {u["id"] for u in presence["payload"]["users"]}
    assert ids == {users["annotator"].id, users["reviewer"].id}
    await alice.disconnect()
    for _ in range(10):
        presence = await receive_until(bob, "presence")
        if {u["id"] for u in presence["payload"]["users"]} == {users["reviewer"].id}:
            break
    assert [u["id"] for u in presence["payload"]["users"]] == [users["reviewer"].id]
    await bob.disconnect()


async def test_a_team_joining_costs_one_presence_answer_per_join(
    connect, project, users, monkeypatch
) -> None:
    """The room answers each newcomer for all the process's members in one message: a reply
    from every member would be O(members²) channel-layer messages queued ahead of events."""
    layer = get_channel_layer()
    answers: list[dict[str, Any]] = []
    send = layer.send

    async def recording_send(channel: str, message: dict[str, Any]) -> None:
        if message["type"] == "presence.states":
            answers.append(message)
        await send(channel, message)

    monkeypatch.setattr(layer, "send", recording_send)
    team = ("owner", "manager", "annotator", "reviewer", "viewer", "annotator", "viewer")
    sockets = []
    for who in team:
        _, socket = await connect(project.id, who)
        await receive_until(socket, "hello")
        sockets.append(socket)
    everybody = {users[who].id for who in team}
    for _ in range(20):
        presence = await receive_until(sockets[-1], "presence")
        if {u["id"] for u in presence["payload"]["users"]} == everybody:
            break
    assert {u["id"] for u in presence["payload"]["users"]} == everybody
    # The first socket finds nobody; every later one gets one answer listing all before it.
    assert [len(answer["states"]) for answer in answers] == list(range(1, len(team)))
    for socket in sockets:
        await socket.disconnect()


async def test_annotation_events_reach_members_only_with_seq(
    connect, project, other_project, make_image, make_annotation
) -> None:
    image = await sync_to_async(make_image)(project, width=8, height=6)
    _, member = await connect(project.id, "viewer")
    await receive_until(member, "hello")
    _, stranger = await connect(other_project.id, "outsider")
    await receive_until(stranger, "hello")
    annotation = await sync_to_async(make_annotation)(image)
    created = await receive_until(member, "annotation.created")
    assert created["payload"]["id"] == annotation.id
    assert created["payload"]["version"] == 1
    assert created["payload"]["seq"] == 1
    assert created["payload"]["author"] is not None
    await sync_to_async(annotation_update)(
        annotation=annotation, expected_version=1, data={"review_state": "rejected"}
    )
    updated = await receive_until(member, "annotation.updated")
    assert (updated["payload"]["version"], updated["payload"]["seq"]) == (2, 2)
    heard = [m["event"] for m in await drain(stranger)]
    assert not [event for event in heard if event.startswith("annotation.")]
    await member.disconnect()
    await stranger.disconnect()


async def test_catch_up_replays_every_missed_event(
    connect, project, make_image, make_annotation
) -> None:
    image = await sync_to_async(make_image)(project, width=8, height=6)
    first = await sync_to_async(make_annotation)(image)
    _, socket = await connect(project.id, "annotator")
    hello = await receive_until(socket, "hello")
    seen = hello["payload"]["seq"]
    assert seen == 1
    await socket.disconnect()

    # While the client is away: two creations, an update, a deletion.
    second = await sync_to_async(make_annotation)(image, box=(0, 0, 2, 2))
    await sync_to_async(make_annotation)(image, box=(2, 2, 5, 5))
    await sync_to_async(annotation_update)(
        annotation=second, expected_version=1, data={"rle": rle_box(6, 8, (0, 0, 3, 3))}
    )
    await sync_to_async(annotation_delete)(annotation=first, expected_version=1)

    _, socket = await connect(project.id, "annotator")
    await receive_until(socket, "hello")
    await socket.send_json_to({"action": "catch_up", "after": seen})
    replay: list[dict[str, Any]] = []
    while True:
        message = await socket.receive_json_from(timeout=5)
        if message["event"] == "caught_up":
            break
        if message["event"].startswith("annotation."):
            replay.append(message)
    assert [(m["event"], m["payload"]["seq"]) for m in replay] == [
        ("annotation.created", 2),
        ("annotation.created", 3),
        ("annotation.updated", 4),
        ("annotation.deleted", 5),
    ]
    assert replay[2]["payload"]["id"] == second.id
    assert replay[2]["payload"]["version"] == 2
    assert replay[3]["payload"] == {"id": first.id, "image": image.id, "version": 2, "seq": 5}
    assert message["payload"] == {"seq": 5, "more": False}
    await socket.send_json_to({"action": "catch_up", "after": "x"})
    assert (await receive_until(socket, "error"))["payload"]["detail"]
    await socket.disconnect()


async def test_a_models_event_reaches_every_socket_and_keeps_it_open(connect, project) -> None:
    from samapp.realtime import contract
    from samapp.realtime.events import broadcast_models

    connected, communicator = await connect(project.id, "viewer")
    assert connected
    await receive_until(communicator, "hello")
    payload = {"key": "mobile_sam", "state": "downloading", "percent": 12.5}
    await sync_to_async(broadcast_models)(event=contract.MODEL_DOWNLOAD, payload=payload)  # type: ignore[arg-type]
    message = await receive_until(communicator, "model.download")
    assert message["payload"] == payload
    # The consumer is still serving: it answers a catch-up after the event.
    await communicator.send_json_to({"action": "catch_up", "after": 0})
    caught_up = await receive_until(communicator, "caught_up")
    assert caught_up["payload"]["more"] is False
    await communicator.disconnect()
