"""Broadcast without storms: one channel-layer subscription per process and room, frames
encoded once, the annotation log delivered in seq order (gaps filled from the log by the room,
not by every socket), bounded catch-up pages, and a slow client dropped instead of slowing
the room."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from samapp.realtime import consumers
from samapp.realtime.contract import ANNOTATION_CREATED
from samapp.realtime.events import project_group
from samapp.realtime.hub import Room
from samapp.services.annotation_events import annotation_event_record, annotation_events_record
from tests.fixtures import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A room member that keeps what it is given."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def deliver(self, frame: str) -> None:
        self.frames.append(frame)

    def room_message(self, message: dict[str, Any]) -> None:
        """Presence is not under test here."""

    def presence_entry(self) -> dict[str, Any]:
        return {"channel": f"recorder.{id(self)}", "user": {"id": 0}, "image": None}


def event(seq: int) -> dict[str, Any]:
    return {"id": seq, "image": 1, "version": 1, "seq": seq}


def record_events(project_id: int, count: int) -> None:
    with transaction.atomic():
        for i in range(count):
            annotation_event_record(
                project_id=project_id, event=ANNOTATION_CREATED, payload=event(i + 1)
            )


def record_together(project_id: int, count: int) -> None:
    """One change recording `count` events (as a bulk review does)."""
    with transaction.atomic():
        annotation_events_record(
            project_id=project_id,
            events=[(ANNOTATION_CREATED, event(i + 1)) for i in range(count)],
        )


async def test_events_recorded_together_cross_the_layer_in_batches(
    connect, project, settings, monkeypatch
) -> None:
    settings.SAM_BROADCAST_BATCH = 3
    layer = get_channel_layer()
    group_send = layer.group_send
    batches: list[list[int]] = []

    async def counted(group: str, message: dict[str, Any]) -> None:
        if message["type"] == "project.events":
            batches.append([item["payload"]["seq"] for item in message["events"]])
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", counted)
    _, socket = await connect(project.id, "annotator")
    await receive_until(socket, "hello")
    await sync_to_async(record_together)(project.id, 7)
    heard = [(await receive_until(socket, "annotation.created"))["payload"] for _ in range(7)]
    assert [payload["seq"] for payload in heard] == list(range(1, 8))
    assert heard[0] == {**event(1), "seq": 1}
    assert batches == [[1, 2, 3], [4, 5, 6], [7]]
    await socket.disconnect()


async def test_sockets_of_a_process_share_one_subscription(connect, project) -> None:
    sockets = []
    for who in ("annotator", "reviewer", "viewer"):
        _, socket = await connect(project.id, who)
        await receive_until(socket, "hello")
        sockets.append(socket)
    layer = get_channel_layer()
    assert len(layer.groups[project_group(project.id)]) == 1  # type: ignore[union-attr]
    await sync_to_async(record_events)(project.id, 1)
    for socket in sockets:
        assert (await receive_until(socket, "annotation.created"))["payload"]["seq"] == 1
    for socket in sockets:
        await socket.disconnect()
    assert project_group(project.id) not in layer.groups  # type: ignore[union-attr]


async def test_a_room_encodes_once_and_delivers_in_seq_order(project, settings) -> None:
    settings.SAM_SOCKET_GAP_WAIT = 30  # the late broadcast arrives long before the room reads
    room = Room(get_channel_layer(), project.id)
    await room.open()
    members = [Recorder(), Recorder()]
    room.members.update(members)
    try:
        room.event("annotation.created", event(2))
        assert members[0].frames == []  # held back: seq 1 is missing
        room.event("annotation.created", event(1))
        room.event("annotation.created", event(1))  # a duplicate is dropped
        room.event("embedding.ready", {"image": 7, "model_key": "sam_tiny"})  # no seq: at once
        assert [f.count('"seq": ') for f in members[0].frames] == [1, 1, 0]
        assert '"seq": 1' in members[0].frames[0]
        assert '"seq": 2' in members[0].frames[1]
        assert all(a is b for a, b in zip(*(m.frames for m in members), strict=True))
    finally:
        await room.close()


async def test_a_room_fills_a_gap_from_the_log_once(project, settings) -> None:
    settings.SAM_SOCKET_GAP_WAIT = 0
    room = Room(get_channel_layer(), project.id)
    await room.open()
    member = Recorder()
    room.members.add(member)
    try:
        await sync_to_async(record_events)(project.id, 3)
        # Only the third broadcast ever reaches this process (read the room's own channel
        # empty first: the other two went to it as well).
        while room.seq < 3 and not room.held:
            await asyncio.sleep(0.01)
        room.held.clear()
        room.seq = 0
        member.frames.clear()
        room.event("annotation.created", event(3))
        assert room.filler is not None
        await room.filler
        assert [f'"seq": {i}' in frame for i, frame in enumerate(member.frames, 1)] == [True] * 3
        assert room.seq == 3
        assert not room.held
    finally:
        await room.close()


async def test_catch_up_serves_one_page_per_request_and_merges_repeats(
    connect, project, settings, monkeypatch
) -> None:
    settings.SAM_SOCKET_CATCH_UP_INTERVAL = 0
    monkeypatch.setattr(consumers, "CATCH_UP_PAGE", 2)
    await sync_to_async(record_events)(project.id, 5)
    _, socket = await connect(project.id, "annotator")
    await receive_until(socket, "hello")
    for _ in range(3):  # a client asking again before its answer came
        await socket.send_json_to({"action": "catch_up", "after": 0})
    pages: list[tuple[list[int], dict[str, Any]]] = []
    seqs: list[int] = []
    while len(pages) < 1 or not await socket.receive_nothing(timeout=0.5):
        message = await socket.receive_json_from(timeout=5)
        if message["event"] == "caught_up":
            pages.append((seqs, message["payload"]))
            seqs = []
        elif message["event"].startswith("annotation."):
            seqs.append(message["payload"]["seq"])
    assert pages == [([1, 2], {"seq": 2, "more": True})]
    await socket.send_json_to({"action": "catch_up", "after": 2})
    await socket.send_json_to({"action": "catch_up", "after": 2})
    page = [m async for m in _until_caught_up(socket)]
    assert page[-1]["payload"] == {"seq": 4, "more": True}
    await socket.send_json_to({"action": "catch_up", "after": 4})
    page = [m async for m in _until_caught_up(socket)]
    assert [m["payload"]["seq"] for m in page] == [5, 5]
    assert page[-1]["payload"] == {"seq": 5, "more": False}
    await socket.disconnect()


async def _until_caught_up(socket: Any) -> Any:
    while True:
        message = await socket.receive_json_from(timeout=5)
        if message["event"] == "caught_up" or message["event"].startswith("annotation."):
            yield message
        if message["event"] == "caught_up":
            return


async def test_a_slow_client_is_closed_and_the_others_hear_everything(
    connect, project, settings, monkeypatch
) -> None:
    settings.SAM_SOCKET_SEND_QUEUE = 4
    write = consumers.ProjectConsumer._write

    async def stalled_for_the_viewer(self: Any) -> None:
        if self.scope["user"].username == "viewer":  # a client that stopped reading
            await asyncio.Event().wait()
        await write(self)

    monkeypatch.setattr(consumers.ProjectConsumer, "_write", stalled_for_the_viewer)
    _, slow = await connect(project.id, "viewer")
    _, fast = await connect(project.id, "annotator")
    await receive_until(fast, "hello")
    await sync_to_async(record_events)(project.id, 8)
    closed = await slow.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_TOO_SLOW}
    heard = [(await receive_until(fast, "annotation.created"))["payload"]["seq"] for _ in range(8)]
    assert heard == list(range(1, 9))
    await fast.disconnect()
