"""A channel layer for the embedded default: in-memory within the web process, bridged to the
local worker's processes through a spool directory — no server needed.

Processes that never add a channel to a group (Celery workers, management commands) write each
`group_send` as a small JSON file into the spool; the web process, once a websocket joined a
group, polls the spool and delivers those messages to its in-memory groups. One web process
per spool (the embedded default runs one); production uses channels_redis instead."""

import asyncio
import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from channels.layers import InMemoryChannelLayer


class SpoolChannelLayer(InMemoryChannelLayer):
    def __init__(
        self,
        spool_dir: str,
        poll_interval: float = 0.02,
        message_max_age: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spool_dir = Path(spool_dir)
        self.poll_interval = poll_interval
        self.message_max_age = message_max_age
        self._pollers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    # -- writing side (any process) -------------------------------------------------------

    def _polling(self) -> bool:
        return any(not task.done() for task in self._pollers.values())

    def _spool_write(self, group: str, message: dict[str, Any]) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex}"
        tmp = self.spool_dir / f".{name}.tmp"
        tmp.write_text(json.dumps({"group": group, "message": message}))
        os.replace(tmp, self.spool_dir / f"{name}.json")

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await super().group_send(group, message)
        if not self._polling():  # no websockets in this process: hand it to the web process
            self._spool_write(group, message)

    # -- reading side (the web process) ---------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        loop = asyncio.get_running_loop()
        task = self._pollers.get(loop)
        if task is None or task.done():
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self._pollers[loop] = loop.create_task(self._poll())

    def _take(self, name: str, pid: int) -> dict[str, Any] | None:
        path = self.spool_dir / name
        try:
            created_ns, writer, _ = name.removesuffix(".json").split("-")
            stale = time.time() - int(created_ns) / 1e9 > self.message_max_age
            if int(writer) == pid or stale:
                path.unlink(missing_ok=True)
                return None
            data = path.read_bytes()
            path.unlink()
        except (FileNotFoundError, ValueError):
            return None
        body: dict[str, Any] = json.loads(data)
        return body

    async def _poll(self) -> None:
        pid = os.getpid()
        while True:
            try:
                names = sorted(n for n in os.listdir(self.spool_dir) if n.endswith(".json"))
            except FileNotFoundError:
                names = []
            for name in names:
                body = self._take(name, pid)
                if body is not None:
                    await InMemoryChannelLayer.group_send(self, body["group"], body["message"])
            await asyncio.sleep(self.poll_interval)

    async def stop_polling(self) -> None:
        """Stop this event loop's poller (tests; a server simply exits)."""
        task = self._pollers.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def flush(self) -> None:
        await self.stop_polling()
        await super().flush()
