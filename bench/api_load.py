"""API under load: 50 concurrent annotators writing annotations over REST (create, then
If-Match PATCHes of their own annotation and of one annotation per image that everybody edits)
while each holds the project websocket and must receive every write's broadcast.

Loopback only: a real daphne on 127.0.0.1 (ephemeral port) with a throwaway database
(Postgres + Redis channel layer when they answer on 127.0.0.1, else SQLite + the in-process
layer); bounded: a fixed number of writes per annotator, a global deadline, then it stops.

    python bench/api_load.py [--annotators 50] [--writes 10] [--deadline 240]

Baseline in the same run: one annotator doing the same writes alone. Checks: every successful
write's (id, version) reaches every connected annotator (lost broadcasts), and every annotation's
final version and content match the successful writes (lost updates: a stale write must get 412,
never overwrite). Broadcasts are followed as the app's client does: a gap in the project's event
``seq`` triggers a websocket ``catch_up``; one last catch-up after the writes covers trailing gaps.
The delivery line counts the catch-ups that gaps triggered (dropped or reordered broadcasts). Prints
throughput, latency percentiles, losses, and the throughput ratio last.

Team mode (``--think-time S``) models a working team instead of a saturating one, in the
production profile (Postgres + Redis channel layer, production settings, uvicorn with
``--web-processes`` worker processes): N annotators each on an image of their own accept a mask
after an exponential think time of mean S seconds (a new annotation, or a new mask for their
last one), a share of their writes (``--contended``) goes to one image every annotator works
on, reviewers bulk-accept the newest writes (which moves their versions: an annotator's next
edit may get 412 and retry), viewers watch, and every client holds the project websocket. Per
N (``--annotators 10,50,100,200``) and per web process count (``--web-processes 1,2``) it
reports write p50/p95/p99, broadcast p50/p95/p99 (write sent -> the last other member received
it), lost updates, lost broadcasts and the web processes' CPU per write. Its last line:
``write p95 X ms, broadcast p95 Y ms, lost Z``.

    python bench/api_load.py --annotators 50 --think-time 3 [--duration 60] [--web-processes 2]"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
import websockets
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from pipeline_overhead import ADMIN_DB, Profile  # noqa: E402

SIZE = (48, 64)  # image height, width
LOAD_REDIS = "redis://127.0.0.1:6379/13"
SETUP = """
from django.contrib.auth import get_user_model
from samapp.services.api_tokens import api_token_create
from samapp.services.projects import project_create, member_add
User = get_user_model()
owner = User.objects.create_user(username="owner", password="x")
project = project_create(name="load", created_by=owner, labels=[])
tokens = [api_token_create(user=owner)[1]]
for i in range({n}):
    # Managers: every writer edits the shared annotations, which only managers (and each
    # annotation's author) may.
    user = User.objects.create_user(username=f"writer{{i}}", password="x")
    member_add(project=project, user=user, role="manager")
    tokens.append(api_token_create(user=user)[1])
print("SETUP", project.pk, " ".join(tokens))
"""


def server_reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rle(seed: int) -> dict[str, Any]:
    """A small rectangle mask as COCO compressed RLE (str counts)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(SIZE, np.uint8, order="F")
    y, x = rng.integers(0, SIZE[0] // 2), rng.integers(0, SIZE[1] // 2)
    mask[y : y + 10 + seed % 7, x : x + 12] = 1
    # The seed's bits on the top row make every write's content unique, so the stored mask
    # tells which write landed last (lost-update check).
    mask[0, :] = [(seed >> bit) & 1 for bit in range(SIZE[1])]
    encoded = mask_utils.encode(mask)
    return {"size": list(SIZE), "counts": encoded["counts"].decode()}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng().integers(0, 255, (*SIZE, 3), np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


class LoadProfile(Profile):
    def start_load(self, annotators: int) -> tuple[int, list[str]]:
        self.manage("migrate", "-v", "0")
        line = next(
            x
            for x in self.manage("shell", stdin=SETUP.format(n=annotators)).splitlines()
            if x.startswith("SETUP")
        )
        _, project_id, *tokens = line.split()
        self.spawn_web()
        self.wait_for_web()
        return int(project_id), tokens


class Run:
    """One load phase: writers, listeners, and the bookkeeping to find losses."""

    def __init__(self, base: str, project_id: int, deadline: float) -> None:
        self.base = base
        self.project_id = project_id
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.writes: list[tuple[int, int, float]] = []  # (annotation id, version, sent at)
        self.received: list[dict[tuple[int, int], float]] = []
        # id -> (version, RLE counts) of the last successful write
        self.content: dict[int, tuple[int, str]] = {}
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.writers_done = asyncio.Event()
        self.listener_stats: dict[str, int] = {}

    async def http(self, session: requests.Session, method: str, url: str, **kw: Any):
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        response = await loop.run_in_executor(
            self.pool, lambda: session.request(method, self.base + url, timeout=60, **kw)
        )
        self.latencies.append(time.perf_counter() - start)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response, start

    def record(self, payload: dict[str, Any], sent: float) -> None:
        self.writes.append((payload["id"], payload["version"], sent))
        previous = self.content.get(payload["id"])
        if previous is None or previous[0] < payload["version"]:
            self.content[payload["id"]] = (payload["version"], payload["rle"]["counts"])

    async def create(
        self, session: requests.Session, image: int, seed: int
    ) -> tuple[dict[str, Any], float]:
        """A new annotation with mask ``seed`` on ``image``: its payload and send time."""
        response, sent = await self.http(
            session,
            "POST",
            f"/api/projects/{self.project_id}/images/{image}/annotations/",
            json={"rle": rle(seed), "source": "click"},
        )
        if response.status_code != 201:
            raise RuntimeError(response.text)
        return response.json(), sent

    async def patch(
        self, session: requests.Session, target: int, version: int, seed: int
    ) -> tuple[dict[str, Any], float] | None:
        """Mask ``seed`` for annotation ``target``, based on ``version`` and retried (bounded,
        before the deadline) with the current version on 412: the landed payload and its
        send time, or None."""
        for _ in range(50):
            if time.monotonic() > self.deadline:
                return None
            response, sent = await self.http(
                session,
                "PATCH",
                f"/api/projects/{self.project_id}/annotations/{target}/",
                json={"rle": rle(seed)},
                headers={"If-Match": f'"{version}"'},
            )
            if response.status_code == 200:
                return response.json(), sent
            if response.status_code != 412:
                raise RuntimeError(f"{response.status_code} {response.text}")
            version = response.json()["current"]["version"]
        return None

    async def version_of(self, session: requests.Session, target: int) -> int:
        got, _ = await self.http(
            session, "GET", f"/api/projects/{self.project_id}/annotations/{target}/"
        )
        return int(got.json()["version"])

    async def listen(
        self, ws: Any, seen: dict[tuple[int, int], float], stop: asyncio.Event, start_seq: int
    ) -> None:
        """Collect annotation events as the app's client does: every event carries the project's
        ``seq``; on a gap, ask the server to ``catch_up`` from the last contiguous one. Once the
        writes are over, catch up one last time (a trailing gap has no later event to reveal it;
        the client does this on reconnect). Counts the gap-triggered catch-ups."""
        got: set[int] = set()
        last = start_seq  # every seq <= last has been received
        pending = final_sent = False
        stats = self.listener_stats
        while True:
            if stop.is_set() and (not pending or time.monotonic() > self.deadline + 30):
                return
            if self.writers_done.is_set() and not final_sent and not pending:
                final_sent = pending = True
                await ws.send(json.dumps({"action": "catch_up", "after": last}))
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
            except TimeoutError:
                continue
            event, payload = message["event"], message["payload"]
            if event == "caught_up":
                pending = bool(payload.get("more"))  # one page per request: ask for the next
                if pending:
                    await ws.send(json.dumps({"action": "catch_up", "after": last}))
                continue
            if not event.startswith("annotation.") or payload.get("seq", 0) <= start_seq:
                continue
            got.add(payload["seq"])
            while last + 1 in got:
                last += 1
            if "version" in payload:
                seen.setdefault((payload["id"], payload["version"]), time.perf_counter())
            if max(got) > last and not pending:
                pending = True
                stats["gap catch-up requests"] = stats.get("gap catch-up requests", 0) + 1
                await ws.send(json.dumps({"action": "catch_up", "after": last}))

    async def annotator(
        self, index: int, token: str, images: list[int], shared: list[int], writes: int
    ) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        own, sent = await self.create(session, images[index % len(images)], index)
        self.record(own, sent)
        versions = {own["id"]: own["version"]}
        for step in range(1, writes):
            target = own["id"] if step % 2 else shared[index % len(shared)]
            if target not in versions:
                versions[target] = await self.version_of(session, target)
            landed = await self.patch(session, target, versions[target], index * 100 + step)
            if landed is None:
                return
            payload, sent = landed
            versions[target] = payload["version"]
            self.record(payload, sent)

    async def run(self, tokens: list[str], images: list[int], shared: list[int], writes: int):
        return await self.observe(
            tokens,
            lambda: asyncio.gather(
                *(self.annotator(i, t, images, shared, writes) for i, t in enumerate(tokens))
            ),
        )

    async def observe(self, tokens: list[str], work: Callable[[], Awaitable[Any]]) -> float:
        """Open a project socket per token, run ``work`` (the writers) while every socket
        listens, then wait (bounded) for the last broadcasts. Returns the writers' seconds."""
        ws_base = self.base.replace("http", "ws")
        stop = asyncio.Event()
        sockets = []
        for token in tokens:
            ws = await websockets.connect(
                f"{ws_base}/ws/projects/{self.project_id}/?token={token}",
                origin=self.base,
                max_queue=None,
            )
            hello = json.loads(await ws.recv())
            assert hello["event"] == "hello", hello
            sockets.append((ws, hello["payload"]["seq"]))
            self.received.append({})
        listeners = [
            asyncio.create_task(self.listen(ws, seen, stop, seq))
            for (ws, seq), seen in zip(sockets, self.received, strict=True)
        ]
        start = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - start
        self.writers_done.set()
        expected = {(a, v) for a, v, _ in self.writes}
        grace = time.monotonic() + 15
        while time.monotonic() < min(grace, self.deadline + 15) and any(
            not expected <= seen.keys() for seen in self.received
        ):
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*listeners)
        for ws, _ in sockets:
            await ws.close()
        self.pool.shutdown()
        return elapsed

    def report(self, elapsed: float) -> dict[str, float]:
        sent = {(a, v): t for a, v, t in self.writes}
        missing = sum(len(sent.keys() - seen.keys()) for seen in self.received)
        fanout = [seen[key] - t for seen in self.received for key, t in sent.items() if key in seen]
        lat = np.array(self.latencies) * 1000
        return {
            "writes": len(self.writes),
            "requests": len(self.latencies),
            "conflicts": self.statuses.get(412, 0),
            "elapsed": elapsed,
            "writes_per_s": len(self.writes) / elapsed,
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "fanout_p95": float(np.percentile(fanout, 95) * 1000) if fanout else float("nan"),
            "lost_broadcasts": missing,
            "delivery": dict(self.listener_stats),
        }


def setup_content(base: str, project_id: int, owner: str, images: int) -> tuple[list, list]:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {owner}"
    prefix = f"{base}/api/projects/{project_id}"
    image_ids, shared = [], []
    for i in range(images):
        response = session.post(
            f"{prefix}/images/", files={"file": (f"{i}.png", png(), "image/png")}, timeout=60
        )
        assert response.status_code == 201, response.text
        image_ids.append(response.json()["created"][0]["id"])
        response = session.post(
            f"{prefix}/images/{image_ids[-1]}/annotations/",
            json={"rle": rle(1000 + i)},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        shared.append(response.json()["id"])
    return image_ids, shared


def lost_updates(base: str, project_id: int, owner: str, runs: list[Run]) -> int:
    """Annotations whose stored mask is not the last successful write's, or whose version is
    older than it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {owner}"
    expected: dict[int, tuple[int, str]] = {}
    for run in runs:
        for key, value in run.content.items():
            if key not in expected or expected[key][0] < value[0]:
                expected[key] = value
    lost = 0
    for annotation_id, (version, counts) in expected.items():
        got = session.get(
            f"{base}/api/projects/{project_id}/annotations/{annotation_id}/", timeout=60
        ).json()
        # A reviewer's accept moves the version on without touching the mask.
        lost += got["version"] < version or got["rle"]["counts"] != counts
    return lost


@contextlib.contextmanager
def fresh_stack(use_pg: bool) -> Iterator[dict[str, str]]:
    """A throwaway Postgres database and an emptied Redis database (channel layer and broker)
    when ``use_pg``; else nothing (SQLite + spool layer). Dropped afterwards."""
    if not use_pg:
        yield {}
        return
    import psycopg
    import redis

    dbname = f"samload_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DB, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    redis.Redis.from_url(LOAD_REDIS).flushdb()
    try:
        yield {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{dbname}",
            "REDIS_URL": LOAD_REDIS,
        }
    finally:
        with psycopg.connect(ADMIN_DB, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        redis.Redis.from_url(LOAD_REDIS).flushdb()


def print_logs(profile: Profile) -> None:
    """The first traceback and the tail of each server log, after a failed run."""
    for log in sorted(profile.logs.glob("*.log")):
        text = log.read_text()
        errors = [i for i, line in enumerate(text.splitlines()) if "Traceback" in line]
        head = "\n".join(text.splitlines()[errors[0] : errors[0] + 40]) if errors else ""
        print(f"--- {log.name} (first traceback)\n{head}", file=sys.stderr)
        print(f"--- {log.name} (tail)\n{text[-3000:]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--annotators", default="50", help="N; in team mode a comma list, e.g. 10,50,100,200"
    )
    parser.add_argument("--writes", type=int, default=10, help="writes per annotator")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=240, help="seconds, whole load")
    parser.add_argument("--db", choices=["auto", "sqlite", "postgres"], default="auto")
    team = parser.add_argument_group("team mode")
    team.add_argument("--think-time", type=float, help="mean seconds between an annotator's writes")
    team.add_argument("--duration", type=float, default=60, help="seconds of work per phase")
    team.add_argument("--contended", type=float, default=0.1, help="share on the shared image")
    team.add_argument("--web-processes", default="2", help="uvicorn workers; a comma list")
    team.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.think_time is not None:
        if not (server_reachable(5432) and server_reachable(6379)):
            sys.exit("team mode runs the production profile: PostgreSQL and Redis must answer")
        from team_load import run_team

        with tempfile.TemporaryDirectory(prefix="sam-team-load-") as tmp:
            run_team(args, Path(tmp))
        return
    annotators = int(args.annotators)
    use_pg = args.db == "postgres" or (
        args.db == "auto" and server_reachable(5432) and server_reachable(6379)
    )
    with tempfile.TemporaryDirectory(prefix="sam-api-load-") as tmp, fresh_stack(use_pg) as extra:
        profile = LoadProfile("load", Path(tmp), extra)
        try:
            project_id, tokens = profile.start_load(annotators)
            base = f"http://127.0.0.1:{profile.port}"
            owner, members = tokens[0], tokens[1:]
            images, shared = setup_content(base, project_id, owner, args.images)
            hard_stop = time.monotonic() + args.deadline
            solo = Run(base, project_id, hard_stop)
            solo_s = asyncio.run(solo.run(members[:1], images, shared, args.writes))
            crowd = Run(base, project_id, hard_stop)
            crowd_s = asyncio.run(crowd.run(members, images, shared, args.writes))
            lost = lost_updates(base, project_id, owner, [solo, crowd])
            rows = {
                "1 annotator (baseline)": solo.report(solo_s),
                f"{annotators} annotators": crowd.report(crowd_s),
            }
        except Exception:
            print_logs(profile)
            raise
        finally:
            profile.stop()

    stack = "Postgres + Redis channel layer" if use_pg else "SQLite + spool layer"
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at end; "
        f"one daphne process on loopback; {stack}"
    )
    print(
        f"{'phase':<24}{'writes':>7}{'reqs':>6}{'412s':>6}{'s':>7}{'writes/s':>10}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'bcast p95 ms':>13}{'lost bcast':>11}"
    )
    for name, r in rows.items():
        print(
            f"{name:<24}{r['writes']:>7}{r['requests']:>6}{r['conflicts']:>6}{r['elapsed']:>7.1f}"
            f"{r['writes_per_s']:>10.1f}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['fanout_p95']:>13.1f}"
            f"{r['lost_broadcasts']:>11}"
        )
    for name, r in rows.items():
        print(f"delivery ({name}): {r['delivery']}")
    print(f"lost updates (final version/content differs from the last successful write): {lost}")
    crowd_row = rows[f"{annotators} annotators"]
    solo_row = rows["1 annotator (baseline)"]
    print(
        f"ratio {annotators}-annotator / 1-annotator throughput: "
        f"{crowd_row['writes_per_s'] / solo_row['writes_per_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
