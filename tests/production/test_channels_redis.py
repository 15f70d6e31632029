"""Websocket round trips through channels_redis on the real Redis: the project room's sockets,
opened through backend.asgi's whole stack (origin check, token auth, routing, consumer),
receive an event that the service layer sends from a worker thread, and only they do."""

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.production.conftest import REDIS, REDIS_LAYER_URL, require

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_layer(settings: Any) -> None:
    require("Redis", REDIS)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A prefix of its own: nothing else on this Redis hears these messages.
            "CONFIG": {"hosts": [REDIS_LAYER_URL], "prefix": f"samtest-{uuid.uuid4().hex[:8]}"},
        }
    }


async def open_socket(project_id: int, user: Any) -> Any:
    from channels.testing import WebsocketCommunicator

    from backend.asgi import application
    from samapp.services.api_tokens import api_token_create

    token = await sync_to_async(lambda: api_token_create(user=user)[1])()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/projects/{project_id}/?token={token}",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def receive_event(communicator: Any, event: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message.get("event") == event:
            return message


async def test_project_event_round_trip_through_redis(
    redis_layer: None, project: Any, other_project: Any, users: dict[str, Any]
) -> None:
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer

    from samapp.realtime.events import broadcast

    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    annotator = await open_socket(project.id, users["annotator"])
    viewer = await open_socket(project.id, users["viewer"])
    outsider = await open_socket(other_project.id, users["outsider"])
    try:
        await receive_event(annotator, "hello")
        await receive_event(viewer, "hello")
        await receive_event(outsider, "hello")
        payload = {"sha256": "ab" * 32, "model_key": "sam_tiny", "nonce": uuid.uuid4().hex}
        # From a worker thread, as a service (or a Celery task) sends it.
        await sync_to_async(broadcast)(
            project_id=project.id, event="embedding.ready", payload=payload
        )
        for socket in (annotator, viewer):
            message = await receive_event(socket, "embedding.ready")
            assert message["payload"] == payload
        # The other project's room heard nothing of it.
        while not await outsider.receive_nothing(timeout=0.5):
            assert (await outsider.receive_json_from())["event"] != "embedding.ready"
    finally:
        for socket in (annotator, viewer, outsider):
            await socket.disconnect()
        await layer.flush()


async def test_a_label_change_on_many_annotations_reaches_the_room_in_seq_order_through_redis(
    redis_layer: None,
    settings: Any,
    project: Any,
    users: dict[str, Any],
    make_image: Any,
    make_annotation: Any,
) -> None:
    """A label deleted with its annotations reassigned changes many annotations at once: their
    updates cross Redis in batches of `SAM_BROADCAST_BATCH` events, and every socket hears each
    annotation's update once, in seq order."""
    from channels.layers import get_channel_layer

    from samapp.services.projects import label_delete

    settings.SAM_BROADCAST_BATCH = 4
    cat, dog = await sync_to_async(lambda: list(project.labels.order_by("name")))()
    image = await sync_to_async(make_image)(project)
    ids = [(await sync_to_async(make_annotation)(image, label=cat)).pk for _ in range(10)]
    sockets = [await open_socket(project.id, users[who]) for who in ("annotator", "viewer")]
    try:
        for socket in sockets:
            await receive_event(socket, "hello")
        await sync_to_async(label_delete)(label=cat, annotations="reassign", reassign_to=dog)
        for socket in sockets:
            heard = [(await receive_event(socket, "annotation.updated"))["payload"] for _ in ids]
            assert [p["id"] for p in heard] == ids
            assert all(p["label"] == dog.pk for p in heard)
            seqs = [p["seq"] for p in heard]
            assert seqs == list(range(seqs[0], seqs[0] + len(ids)))
    finally:
        for socket in sockets:
            await socket.disconnect()
        await get_channel_layer().flush()


async def test_channel_layer_send_and_group_send_on_redis(redis_layer: None) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    try:
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.send(first, {"type": "direct", "n": 1})
        assert await layer.receive(first) == {"type": "direct", "n": 1}
        await layer.group_add("room", first)
        await layer.group_add("room", second)
        await layer.group_send("room", {"type": "fan.out", "n": 2})
        assert await layer.receive(first) == {"type": "fan.out", "n": 2}
        assert await layer.receive(second) == {"type": "fan.out", "n": 2}
    finally:
        await layer.flush()
