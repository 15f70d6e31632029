"""Project room websocket: membership-checked, thin over selectors."""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from samapp.realtime.events import project_group, user_group
from samapp.selectors.projects import membership_get

# Close codes in the 4000 range are the application's own.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_MEMBER = 4404


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    project_id: int

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        membership = await database_sync_to_async(membership_get)(
            project_id=self.project_id, user=user
        )
        if membership is None:
            await self.close(code=CLOSE_NOT_MEMBER)
            return
        await self.channel_layer.group_add(project_group(self.project_id), self.channel_name)
        await self.channel_layer.group_add(user_group(user.id), self.channel_name)
        await self.accept()
        await self.send_json({"event": "hello", "payload": {"role": membership.role}})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "project_id"):
            await self.channel_layer.group_discard(
                project_group(self.project_id), self.channel_name
            )
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self.channel_layer.group_discard(user_group(user.id), self.channel_name)

    async def project_event(self, message: dict[str, Any]) -> None:
        await self.send_json({"event": message["event"], "payload": message["payload"]})

    async def membership_revoked(self, message: dict[str, Any]) -> None:
        if message.get("project_id") == getattr(self, "project_id", None):
            await self.close(code=CLOSE_NOT_MEMBER)
