"""The embedded default's channel layer: a worker process's group_send reaches the web
process's websockets through the spool directory, without any server."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from tests.fixtures import receive_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
async def test_events_from_another_process_reach_sockets(
    connect, project, settings, tmp_path
) -> None:
    from channels.layers import get_channel_layer

    spool = tmp_path / "channels"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "samapp.realtime.layers.SpoolChannelLayer",
            "CONFIG": {"spool_dir": str(spool)},
        }
    }
    _, socket = await connect(project.id, "viewer")
    await receive_until(socket, "hello")
    script = textwrap.dedent(
        f"""
        from samapp.realtime.layers import SpoolChannelLayer
        from asgiref.sync import async_to_sync
        layer = SpoolChannelLayer(spool_dir={str(spool)!r})
        async_to_sync(layer.group_send)(
            "project.{project.id}",
            {{"type": "project.event", "event": "embedding.ready",
              "payload": {{"sha256": "abc", "model_key": "sam_tiny"}}}},
        )
        """
    )
    done = await sync_to_async(subprocess.run)(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    message = await receive_until(socket, "embedding.ready", timeout=5)
    assert message["payload"] == {"sha256": "abc", "model_key": "sam_tiny"}
    assert not list(spool.glob("*.json"))  # taken
    await socket.disconnect()
    await get_channel_layer().stop_polling()
