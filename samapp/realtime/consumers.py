"""Project room websocket: membership-checked, thin over selectors and services.

Server → client: {"event": str, "payload": {...}}. Client → server: {"action": "presence",
"image": id|null} and {"action": "catch_up", "after": seq}. Presence needs no storage: each
socket announces itself to the room, answers newcomers directly, and says goodbye on leaving,
so every socket holds the room's picture whichever process it lives in.

A socket stays open only while its user is active, the session or API token it was opened
with is still valid and the user may view the project: revocations (logout, token revoked,
password change, deactivation, membership removed or changed) reach it through the user's
group and make it re-check at once; it also re-checks every SAM_SOCKET_RECHECK_SECONDS and
when its token expires."""

import asyncio
import contextlib
from typing import Any, TypeGuard, cast

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from samapp.json_input import json_parse_bounded
from samapp.models import ApiToken, Membership
from samapp.realtime.contract import CAUGHT_UP, ERROR, HELLO, PRESENCE
from samapp.realtime.events import MODELS_GROUP, project_group, user_group
from samapp.roles import Capability, role_can
from samapp.selectors.annotation_events import (
    annotation_events_after,
    annotation_events_latest_seq,
)
from samapp.selectors.api_tokens import socket_credential_valid
from samapp.selectors.projects import membership_get
from samapp.services.api_tokens import session_fingerprint

# Close codes in the 4000 range are the application's own.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_MEMBER = 4404
CATCH_UP_PAGE = 1000


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    project_id: int

    async def connect(self) -> None:
        self.presence: dict[str, dict[str, Any]] = {}
        self.image: int | None = None
        self.revoked = False
        self.rechecks: asyncio.Task[None] | None = None
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
        await self.channel_layer.group_add(project_group(self.project_id), self.channel_name)
        await self.channel_layer.group_add(user_group(user.id), self.channel_name)
        await self.channel_layer.group_add(MODELS_GROUP, self.channel_name)
        await self.accept()
        seq = await database_sync_to_async(annotation_events_latest_seq)(project_id=self.project_id)
        await self.send_json(
            {
                "event": HELLO,
                "payload": {"role": membership.role, "user": self.user_info, "seq": seq},
            }
        )
        await self._announce(reply_to=self.channel_name)
        self.rechecks = asyncio.create_task(self._recheck_periodically())

    async def disconnect(self, code: int) -> None:
        rechecks = getattr(self, "rechecks", None)
        if rechecks is not None:
            rechecks.cancel()
        if hasattr(self, "user_info"):
            await self.channel_layer.group_send(
                project_group(self.project_id),
                {"type": "presence.leave", "channel": self.channel_name},
            )
            await self.channel_layer.group_discard(
                project_group(self.project_id), self.channel_name
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
            await self._catch_up(after)
        else:
            await self._error(f"unknown action {action!r}")

    async def _error(self, message: str) -> None:
        await self.send_json({"event": ERROR, "payload": {"detail": message}})

    async def _catch_up(self, after: int) -> None:
        latest = after
        while True:
            events = await database_sync_to_async(annotation_events_after)(
                project_id=self.project_id, after=latest, limit=CATCH_UP_PAGE
            )
            for event in events:
                await self.send_json({"event": event.event, "payload": event.payload})
                latest = event.seq
            if len(events) < CATCH_UP_PAGE:
                break
        await self.send_json({"event": CAUGHT_UP, "payload": {"seq": latest}})

    # -- presence -------------------------------------------------------------------------

    def _state(self, reply_to: str | None) -> dict[str, Any]:
        return {
            "type": "presence.state",
            "channel": self.channel_name,
            "user": self.user_info,
            "image": self.image,
            "reply_to": reply_to,
        }

    async def _announce(self, *, reply_to: str | None) -> None:
        await self.channel_layer.group_send(project_group(self.project_id), self._state(reply_to))

    async def _send_presence(self) -> None:
        users = {
            (entry["user"]["id"], entry["image"]): {**entry["user"], "image": entry["image"]}
            for entry in self.presence.values()
        }
        ordered = sorted(users.values(), key=lambda u: (u["id"], u["image"] or 0))
        await self.send_json({"event": PRESENCE, "payload": {"users": ordered}})

    async def presence_state(self, message: dict[str, Any]) -> None:
        self.presence[message["channel"]] = {"user": message["user"], "image": message["image"]}
        reply_to = message.get("reply_to")
        if reply_to and reply_to != self.channel_name:
            # Best effort: when many members join at once the newcomer's channel can be full;
            # raising here would close this member's socket (1011) and lose its broadcasts.
            with contextlib.suppress(ChannelFull):
                await self.channel_layer.send(reply_to, self._state(None))
        await self._send_presence()

    async def presence_leave(self, message: dict[str, Any]) -> None:
        if self.presence.pop(message["channel"], None) is not None:
            await self._send_presence()

    # -- server events --------------------------------------------------------------------

    async def project_event(self, message: dict[str, Any]) -> None:
        if self.revoked:
            return
        await self.send_json({"event": message["event"], "payload": message["payload"]})

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
        await self.channel_layer.group_discard(project_group(self.project_id), self.channel_name)
        await self.close(code=code)


def _may_view(membership: Membership | None) -> TypeGuard[Membership]:
    return membership is not None and role_can(membership.role, Capability.VIEW)
