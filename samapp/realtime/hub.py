"""One channel-layer subscription per process and project room, fanned out in process.

Without it every socket joins the room's group itself, so each event costs the sender one
channel-layer message per member (serialized, stored and read back once per socket) and
every socket decodes and re-encodes it. Here a `Room` holds one channel in the group per
process: an event crosses the layer once per process, is encoded to its websocket frame once,
and the same text is queued to every local member. A room also answers a newcomer's presence
announcement for all its members in one message: when a team joins at once, a reply per member
would be O(members²) channel-layer messages, which queue ahead of the room's events.

A room also delivers the annotation log in `seq` order. Writes in several processes commit in
`seq` order but their broadcasts race, so events can arrive out of order; the room holds a
later one back until the missing ones arrive, and after `SAM_SOCKET_GAP_WAIT` seconds reads
them from the log itself (one query per process, instead of a catch-up per socket). Members
therefore see every seq once, in order, from the `seq` their hello named."""

import asyncio
import contextlib
import json
import weakref
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from django.conf import settings

from samapp.realtime.events import project_group
from samapp.selectors.annotation_events import (
    annotation_events_after,
    annotation_events_latest_seq,
)

# Log events read per query when the room fills a gap itself.
GAP_PAGE = 500

# The room reads the log in a pool thread with its own connection: the process's one thread
# for sync code also runs every sync view, so under load a read there would queue behind the
# requests and hold the room's later events for as long.
_log_latest_seq = database_sync_to_async(annotation_events_latest_seq, thread_sensitive=False)
_log_after = database_sync_to_async(annotation_events_after, thread_sensitive=False)


class Member(Protocol):
    """A local socket of a room."""

    def deliver(self, frame: str) -> None:
        """Queue `frame` (websocket text) to the client without waiting."""

    def room_message(self, message: dict[str, Any]) -> None:
        """Take a room message that is not an event (presence) without waiting."""

    def presence_entry(self) -> dict[str, Any]:
        """``{"channel", "user", "image"}``: who this member is and what it looks at."""


class Room:
    def __init__(self, layer: BaseChannelLayer, project_id: int) -> None:
        self.layer = layer
        self.project_id = project_id
        self.members: set[Member] = set()
        self.seq = 0  # every event up to this seq has been delivered, in order
        self.held: dict[int, dict[str, Any]] = {}
        self.channel = ""
        self.ready = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.filler: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(project_group(self.project_id), self.channel)
        # Subscribed before reading the log's end: an event committed after this read
        # reaches the channel; one committed before it is at or below `seq`.
        self.seq = await _log_latest_seq(project_id=self.project_id)
        self.reader = asyncio.create_task(self._read())
        self.ready.set()

    async def close(self) -> None:
        for task in (self.reader, self.filler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.layer.group_discard(project_group(self.project_id), self.channel)

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") == "project.event":
                self.event(message["event"], message["payload"])
            elif message.get("type") == "project.events":
                for item in message["events"]:
                    self.event(item["event"], item["payload"])
                    # As between messages: the members' writers drain their queues.
                    await asyncio.sleep(0)
            else:
                if message.get("type") == "presence.state" and message.get("reply_to"):
                    await self.answer(message["reply_to"])
                for member in list(self.members):
                    member.room_message(message)
            # A burst read from the layer does not suspend: let the members' writers drain
            # their queues between messages, so only a client that stopped reading fills its own.
            await asyncio.sleep(0)

    async def answer(self, newcomer: str) -> None:
        """Send the channel `newcomer` the presence states of this process's members."""
        states = [member.presence_entry() for member in self.members]
        states = [state for state in states if state["channel"] != newcomer]
        if states:
            # Best effort, as presence is: raising would end the room's reader. With a full
            # channel the newcomer misses these members until they next announce themselves.
            with contextlib.suppress(ChannelFull):
                await self.layer.send(newcomer, {"type": "presence.states", "states": states})

    def event(self, event: str, payload: dict[str, Any]) -> None:
        """Deliver an event to every member, annotation log events in `seq` order."""
        seq = payload.get("seq")
        if not isinstance(seq, int):
            self._fan_out(event, payload)
            return
        if seq <= self.seq:
            return  # already delivered (a gap filled from the log, then the late broadcast)
        self.held[seq] = {"event": event, "payload": payload}
        self._release()
        if self.held and (self.filler is None or self.filler.done()):
            self.filler = asyncio.create_task(self._fill_gap())

    def _release(self) -> None:
        while self.seq + 1 in self.held:
            self.seq += 1
            message = self.held.pop(self.seq)
            self._fan_out(message["event"], message["payload"])

    def _fan_out(self, event: str, payload: dict[str, Any]) -> None:
        frame = json.dumps({"event": event, "payload": payload})
        for member in list(self.members):
            member.deliver(frame)

    async def _fill_gap(self) -> None:
        """Wait for a missing seq to arrive, then read it from the log; again until nothing
        is held (a read can run before the missing write is visible: it is committed before
        any later seq is broadcast, so a later read finds it)."""
        while self.held:
            await asyncio.sleep(settings.SAM_SOCKET_GAP_WAIT)
            if not self.held:
                break
            rows = await _log_after(project_id=self.project_id, after=self.seq, limit=GAP_PAGE)
            for row in rows:
                if row.seq > self.seq:
                    self.held.setdefault(row.seq, {"event": row.event, "payload": row.payload})
            self._release()


class Hub:
    """The rooms of one event loop (one per web process)."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.rooms: dict[int, Room] = {}

    async def join(self, project_id: int, member: Member) -> int:
        """Add `member` to the project's room; returns the seq its stream continues from."""
        room = self.rooms.get(project_id)
        if room is None:
            room = self.rooms[project_id] = Room(self.layer, project_id)
            try:
                await room.open()
            except BaseException:
                del self.rooms[project_id]
                raise
        else:
            await room.ready.wait()
        room.members.add(member)
        return room.seq

    async def leave(self, project_id: int, member: Member) -> None:
        room = self.rooms.get(project_id)
        if room is None or member not in room.members:
            return
        room.members.discard(member)
        if not room.members and room.ready.is_set():
            del self.rooms[project_id]
            await room.close()


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub_for(layer: BaseChannelLayer) -> Hub:
    """This event loop's hub on `layer`."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = Hub(layer)
    return hub
