"""Group names and event helpers shared by services and consumers."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from samapp.realtime.contract import P, ServerEvent


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


# Every socket joins it: registry model availability (downloads) concerns all pages.
MODELS_GROUP = "models"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _event_send(group: str, event: ServerEvent[P], payload: P) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        group, {"type": "project.event", "event": str(event), "payload": dict(payload)}
    )


def broadcast(*, project_id: int, event: ServerEvent[P], payload: P) -> None:
    """Send `event` to every socket in the project's room (no-op without a channel layer)."""
    _event_send(project_group(project_id), event, payload)


def broadcast_models(*, event: ServerEvent[P], payload: P) -> None:
    """Send `event` to every socket (the models group; no-op without a channel layer)."""
    _event_send(MODELS_GROUP, event, payload)


def notify_user(*, user_id: int, message_type: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(user_group(user_id), {"type": message_type, **payload})
