"""Project room websocket: membership-checked, thin over selectors and services.

Server → client: {"event": str, "payload": {...}}. Client → server: {"action": "presence",
"image": id|null} and {"action": "catch_up", "after": seq}. Presence needs no storage: each
socket announces itself to the room and says goodbye on leaving, and each process's room
answers a newcomer with its members' states, so every socket holds the room's picture
whichever process it lives in.

Room events reach the socket through its process's room (`samapp.realtime.hub`), in `seq`
order. Every frame to the client goes through a bounded queue drained by its own task: a
client that falls SAM_SOCKET_SEND_QUEUE frames behind is closed (CLOSE_TOO_SLOW; it
reconnects and catches up) and never slows the room. A catch-up serves one page of the log
per request; requests that arrive while a page covering them is being served are merged, and
pages to one socket are at least SAM_SOCKET_CATCH_UP_INTERVAL apart.

A socket stays open only while its user is active, the session or API token it was opened
with is still valid and the user may view the project: revocations (logout, token revoked,
password change, deactivation, membership removed or changed) reach it through the user's
group and make it re-check at once; it also re-checks every SAM_SOCKET_RECHECK_SECONDS and
when its token expires."""

import asyncio
import json
from typing import Any, TypeGuard, cast

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from samapp.json_input import json_parse_bounded
from samapp.models import ApiToken, Membership
from samapp.realtime.contract import CAUGHT_UP, ERROR, HELLO, PRESENCE
from samapp.realtime.events import MODELS_GROUP, project_group, user_group
from samapp.realtime.hub import hub_for
from samapp.roles import Capability, role_can
from samapp.selectors.annotation_events import (
    annotation_events_after,
)
from samapp.selectors.api_tokens import socket_credential_valid
from samapp.selectors.projects import membership_get
from samapp.services.api_tokens import session_fingerprint

# Close codes in the 4000 range are the application's own.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_MEMBER = 4404
CLOSE_TOO_SLOW = 4429
CATCH_UP_PAGE = 500
PRESENCE_COALESCE_SECONDS = 0.05


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    project_id: int

    async def connect(self) -> None:
        self.presence: dict[str, dict[str, Any]] = {}
        self.image: int | None = None
        self.revoked = False
        self.rechecks: asyncio.Task[None] | None = None
        self.outbox: asyncio.Queue[str] = asyncio.Queue(settings.SAM_SOCKET_SEND_QUEUE)
        self.writer: asyncio.Task[None] | None = None
        self.in_room = False
        self.catch_up_wanted: int | None = None
        # (after, last seq) of the page being served (last None) or last served.
        self.catch_up_span: tuple[int, int | None] | None = None
        self.catch_up_task: asyncio.Task[None] | None = None
        self.catch_up_next = 0.0
        self.drop: asyncio.Task[None] | None = None
        self.presence_due: asyncio.TimerHandle | None = None
        self.room_inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.room_reader: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        membership = await database_sync_to_async(membership_get)(
            project_id=self.project_id, user=user
        )
        if not _may_view(membership):
            await self.close(code=CLOSE_NOT_MEMBER)
            return
        token = cast("ApiToken | None", self.scope.get("api_token"))
        self.token_id: int | None = token.pk if token is not None else None
        self.token_expiry = token.expiry if token is not None else None
        session = self.scope.get("session")
        self.session_key: str | None = None
        if token is None and session is not None:
            self.session_key = session.session_key
        self.session_fingerprint = (
            session_fingerprint(self.session_key) if self.session_key else None
        )
        self.user_info = {"id": user.id, "username": user.get_username()}
        await self.channel_layer.group_add(user_group(user.id), self.channel_name)
        await self.channel_layer.group_add(MODELS_GROUP, self.channel_name)
        await self.accept()
        self.writer = asyncio.create_task(self._write())
        self.room_reader = asyncio.create_task(self._room_messages())
        seq = await hub_for(self.channel_layer).join(self.project_id, self)
        self.in_room = True
        # No await suspends between joining and queuing the hello: the room's events after
        # `seq` are queued after it.
        await self.send_json(
            {
                "event": HELLO,
                "payload": {"role": membership.role, "user": self.user_info, "seq": seq},
            }
        )
        await self._announce(reply_to=self.channel_name)
        self.rechecks = asyncio.create_task(self._recheck_periodically())

    async def disconnect(self, code: int) -> None:
        for task in ("rechecks", "writer", "catch_up_task", "room_reader", "presence_due"):
            running = getattr(self, task, None)
            if running is not None:
                running.cancel()
        if hasattr(self, "user_info"):
            await self._leave_room()
            await self.channel_layer.group_send(
                project_group(self.project_id),
                {"type": "presence.leave", "channel": self.channel_name},
            )
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self.channel_layer.group_discard(user_group(user.id), self.channel_name)
            await self.channel_layer.group_discard(MODELS_GROUP, self.channel_name)

    # -- client actions -------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """A frame that is not JSON text within SAM_MAX_JSON_DEPTH gets an error event; the
        socket stays open."""
        if text_data is None:
            await self._error("frames must be JSON text")
            return
        try:
            content = json_parse_bounded(text_data, max_depth=settings.SAM_MAX_JSON_DEPTH)
        except ValueError as exc:
            await self._error(f"not JSON: {str(exc)[:200]}")
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "presence":
            image = content.get("image")
            self.image = image if isinstance(image, int) and not isinstance(image, bool) else None
            await self._announce(reply_to=None)
        elif action == "catch_up":
            after = content.get("after", 0)
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                await self._error("catch_up needs 'after': a sequence number >= 0")
                return
            self._want_catch_up(after)
        else:
            await self._error(f"unknown action {action!r}")

    async def _error(self, message: str) -> None:
        await self.send_json({"event": ERROR, "payload": {"detail": message}})

    # -- outgoing frames -------------------------------------------------------------------

    async def send_json(self, content: Any, close: bool = False) -> None:
        if close:
            await super().send_json(content, close=True)
        else:
            self.deliver(await self.encode_json(content))

    def deliver(self, frame: str) -> None:
        """Queue a frame to the client; a client too far behind is closed."""
        if self.revoked:
            return
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.revoked = True
            self.drop = asyncio.create_task(self._drop_slow())

    async def _write(self) -> None:
        while True:
            frame = await self.outbox.get()
            await super().send(text_data=frame)

    async def _drop_slow(self) -> None:
        if self.writer is not None:
            self.writer.cancel()
        await self._leave_room()
        await self.close(code=CLOSE_TOO_SLOW)

    async def _leave_room(self) -> None:
        if self.in_room:
            self.in_room = False
            await hub_for(self.channel_layer).leave(self.project_id, self)

    # -- catch-up -------------------------------------------------------------------------

    def _want_catch_up(self, after: int) -> None:
        span = self.catch_up_span
        if span is not None and span[0] <= after and (span[1] is None or after < span[1]):
            # Sent before the client got that page (a socket is ordered): it covers this one,
            # and its `more` says whether to ask again.
            return
        wanted = self.catch_up_wanted
        self.catch_up_wanted = after if wanted is None else min(wanted, after)
        if self.catch_up_task is None or self.catch_up_task.done():
            self.catch_up_task = asyncio.create_task(self._serve_catch_ups())

    async def _serve_catch_ups(self) -> None:
        loop = asyncio.get_running_loop()
        while self.catch_up_wanted is not None:
            wait = self.catch_up_next - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            after, self.catch_up_wanted = self.catch_up_wanted, None
            self.catch_up_span = (after, None)
            self.catch_up_span = (after, await self._catch_up_page(after))
            self.catch_up_next = loop.time() + settings.SAM_SOCKET_CATCH_UP_INTERVAL

    async def _catch_up_page(self, after: int) -> int:
        """Replay the log after `after`, one page; returns the last seq sent."""
        events = await database_sync_to_async(annotation_events_after)(
            project_id=self.project_id, after=after, limit=CATCH_UP_PAGE + 1
        )
        page = events[:CATCH_UP_PAGE]
        for event in page:
            await self.send_json({"event": event.event, "payload": event.payload})
        latest = page[-1].seq if page else after
        more = len(events) > CATCH_UP_PAGE
        await self.send_json({"event": CAUGHT_UP, "payload": {"seq": latest, "more": more}})
        return latest

    # -- presence -------------------------------------------------------------------------

    def presence_entry(self) -> dict[str, Any]:
        return {"channel": self.channel_name, "user": self.user_info, "image": self.image}

    def _state(self, reply_to: str | None) -> dict[str, Any]:
        return {"type": "presence.state", **self.presence_entry(), "reply_to": reply_to}

    async def _announce(self, *, reply_to: str | None) -> None:
        await self.channel_layer.group_send(project_group(self.project_id), self._state(reply_to))

    def _send_presence(self) -> None:
        """Send the room's picture soon: changes that come together (a team joining at once
        answers every newcomer) make one frame, not one per change."""
        if self.presence_due is None:
            self.presence_due = asyncio.get_running_loop().call_later(
                PRESENCE_COALESCE_SECONDS, self._flush_presence
            )

    def _flush_presence(self) -> None:
        self.presence_due = None
        users = {
            (entry["user"]["id"], entry["image"]): {**entry["user"], "image": entry["image"]}
            for entry in self.presence.values()
        }
        ordered = sorted(users.values(), key=lambda u: (u["id"], u["image"] or 0))
        self.deliver(json.dumps({"event": PRESENCE, "payload": {"users": ordered}}))

    def room_message(self, message: dict[str, Any]) -> None:
        self.room_inbox.put_nowait(message)

    async def _room_messages(self) -> None:
        """Room messages other than events (presence), handled in this socket's own task so
        that the room never waits on one member."""
        while True:
            await self.dispatch(await self.room_inbox.get())

    async def presence_state(self, message: dict[str, Any]) -> None:
        """A member's announcement (the room answers newcomers, see `Room.answer`)."""
        self._presence_set(message)
        self._send_presence()

    async def presence_states(self, message: dict[str, Any]) -> None:
        """A room's answer to this socket's announcement: its members, in one message."""
        for state in message["states"]:
            self._presence_set(state)
        self._send_presence()

    def _presence_set(self, state: dict[str, Any]) -> None:
        self.presence[state["channel"]] = {"user": state["user"], "image": state["image"]}

    async def project_event(self, message: dict[str, Any]) -> None:
        """An event sent to this socket's own groups (the models group): every page cares
        about model availability. Project events come through the room, not here."""
        self.deliver(json.dumps({"event": message["event"], "payload": message["payload"]}))

    async def presence_leave(self, message: dict[str, Any]) -> None:
        if self.presence.pop(message["channel"], None) is not None:
            self._send_presence()

    # -- access ---------------------------------------------------------------------------

    async def access_changed(self, message: dict[str, Any]) -> None:
        """Something about the user's access changed: a revoked credential that is this
        socket's closes it at once; anything else makes it re-check."""
        revoked_token = message.get("revoked_token")
        revoked_session = message.get("revoked_session")
        if (revoked_token is not None and revoked_token == self.token_id) or (
            revoked_session is not None and revoked_session == self.session_fingerprint
        ):
            await self._revoke(CLOSE_UNAUTHENTICATED)
        else:
            await self._recheck()

    async def _recheck_periodically(self) -> None:
        while not self.revoked:
            delay = settings.SAM_SOCKET_RECHECK_SECONDS
            if self.token_expiry is not None:
                left = (self.token_expiry - timezone.now()).total_seconds()
                delay = min(delay, max(left, 0.0))
            await asyncio.sleep(delay)
            await self._recheck()

    async def _recheck(self) -> None:
        if self.revoked:
            return
        user = self.scope.get("user")
        if user is None:
            await self._revoke(CLOSE_UNAUTHENTICATED)
            return
        valid = await database_sync_to_async(socket_credential_valid)(
            user_id=user.pk, token_id=self.token_id, session_key=self.session_key
        )
        if not valid:
            await self._revoke(CLOSE_UNAUTHENTICATED)
            return
        membership = await database_sync_to_async(membership_get)(
            project_id=self.project_id, user=user
        )
        if not _may_view(membership):
            await self._revoke(CLOSE_NOT_MEMBER)

    async def _revoke(self, code: int) -> None:
        if self.revoked:
            return
        # Leave the room first: until the server delivers the disconnect, room events
        # would still reach this consumer.
        self.revoked = True
        await self._leave_room()
        await self.close(code=code)


def _may_view(membership: Membership | None) -> TypeGuard[Membership]:
    return membership is not None and role_can(membership.role, Capability.VIEW)
