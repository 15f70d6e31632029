"""Group names and event helpers shared by services and consumers."""

import asyncio
import os
import threading
from collections.abc import Coroutine, Sequence
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from samapp.realtime.contract import P, ServerEvent


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


# Every socket joins it: registry model availability (downloads) concerns all pages.
MODELS_GROUP = "models"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class _SenderLoop:
    """One event loop per process, in a daemon thread, for the sends made by sync code that no
    event loop runs (Celery tasks, management commands, a WSGI or test client). For them
    `async_to_sync` would start a thread and a loop per send, and channels_redis a Redis
    connection per loop: several ms of CPU per broadcast. Sends are run one after another in
    the order they are submitted; each caller waits for its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (a Celery prefork worker) inherits the loop but not its thread.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="sam-channel-sends", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._running()).result()


_sender = _SenderLoop()


def _called_from_event_loop() -> bool:
    """Whether this thread runs sync code on behalf of an event loop in this process (a view
    under ASGI, a consumer's `database_sync_to_async`): `async_to_sync` then sends on that
    loop, where the layer's connections already live."""
    threadlocal = SyncToAsync.threadlocal
    return (
        getattr(threadlocal, "main_event_loop", None) is not None
        and getattr(threadlocal, "main_event_loop_pid", None) == os.getpid()
    )


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if _called_from_event_loop():
        async_to_sync(layer.group_send)(group, message)
    else:
        _sender.run(layer.group_send(group, message))


def _event_body(event: ServerEvent[P], payload: P) -> dict[str, Any]:
    """An event as the channel layer carries it and a websocket frame shows it."""
    return {"event": str(event), "payload": dict(payload)}


def _event_send(group: str, event: ServerEvent[P], payload: P) -> None:
    _group_send(group, {"type": "project.event", **_event_body(event, payload)})


def broadcast(*, project_id: int, event: ServerEvent[P], payload: P) -> None:
    """Send `event` to every socket in the project's room (no-op without a channel layer)."""
    _event_send(project_group(project_id), event, payload)


def broadcast_many(*, project_id: int, events: Sequence[tuple[ServerEvent[P], P]]) -> None:
    """Send `events`, in order, to every socket in the project's room, `SAM_BROADCAST_BATCH` of
    them per channel-layer message: a change to thousands of annotations costs its request a
    few layer round trips, not one per annotation (no-op without a channel layer)."""
    batch = settings.SAM_BROADCAST_BATCH
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        _group_send(
            project_group(project_id),
            {
                "type": "project.events",
                "events": [_event_body(event, body) for event, body in chunk],
            },
        )


def broadcast_models(*, event: ServerEvent[P], payload: P) -> None:
    """Send `event` to every socket (the models group; no-op without a channel layer)."""
    _event_send(MODELS_GROUP, event, payload)


def notify_user(*, user_id: int, message_type: str, payload: dict[str, Any]) -> None:
    _group_send(user_group(user_id), {"type": message_type, **payload})
