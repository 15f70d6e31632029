"""A bulk review reaching a watching team: a reviewer accepts (then rejects, and so on) every
one of N annotations in one request while K teammates hold the project websocket, on the
production profile (Postgres + Redis channel layer, production settings, uvicorn).

    python bench/bulk_review.py [--annotations 2000] [--viewers 20] [--rounds 2] [--web-processes 1]

Each round is one ``POST /annotations/review/`` of all N ids. Per round it reports the request's
time, the time from the request to the moment the last socket holds all N events (as the app's
client does: in ``seq`` order, asking ``catch_up`` on a gap), the gap catch-ups the sockets
needed and the sockets the server closed as too slow.

Baseline in the same run, on the same database: the web server restarted with
``SAM_BROADCAST_BATCH=1`` (one channel-layer message per annotation event, how the log was
broadcast before events were sent in batches). Each round reviews twice, rejecting then
accepting; the configurations swap places every round, so with an even ``--rounds`` each
goes first and rejects as often as the other.
Last line: the delivery ratio (baseline / ours, medians)."""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from api_load import fresh_stack, print_logs  # noqa: E402
from team_load import TeamProfile, team_content  # noqa: E402

ANNOTATE = """
import numpy as np
from samapp.ml.masks import mask_to_rle
from samapp.models import Image, Project
from samapp.services.annotations import annotation_create
images = list(Image.objects.filter(project_id={project}).order_by("pk"))
rng = np.random.default_rng(0)
ids = []
for index in range({count}):
    image = images[index % len(images)]
    yy, xx = np.mgrid[: image.height, : image.width]
    cy, cx = rng.integers(0, image.height), rng.integers(0, image.width)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(4, 20) ** 2).astype(np.uint8)
    ids.append(annotation_create(image=image, author=None, rle=mask_to_rle(disc)).pk)
print("IDS", " ".join(map(str, ids)))
"""


async def watch(
    url: str, origin: str, expected: int, ready: asyncio.Event, stats: dict[str, int]
) -> float | None:
    """One teammate's socket: the time (perf_counter) it held `expected` new annotation events
    in seq order, or None if the server closed it first."""
    async with websockets.connect(url, origin=origin, max_queue=None) as ws:
        hello = json.loads(await ws.recv())
        start = last = hello["payload"]["seq"]
        got: set[int] = set()
        pending = False
        ready.set()
        while last - start < expected:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            except (TimeoutError, websockets.ConnectionClosed):
                stats["closed"] += 1
                return None
            event, payload = message["event"], message["payload"]
            if event == "caught_up":
                pending = bool(payload.get("more")) or max(got, default=last) > last
                if pending:
                    await ws.send(json.dumps({"action": "catch_up", "after": last}))
                continue
            if not event.startswith("annotation.") or payload.get("seq", 0) <= last:
                continue
            got.add(payload["seq"])
            while last + 1 in got:
                got.discard(last + 1)
                last += 1
            if got and not pending:
                pending = True
                stats["catch-ups"] += 1
                await ws.send(json.dumps({"action": "catch_up", "after": last}))
        return time.perf_counter()


async def review_round(
    base: str, project_id: int, owner: str, viewers: list[str], ids: list[int], state: str
) -> dict[str, float]:
    ws_base = base.replace("http", "ws")
    stats = {"closed": 0, "catch-ups": 0}
    readies = [asyncio.Event() for _ in viewers]
    watchers = [
        asyncio.create_task(
            watch(f"{ws_base}/ws/projects/{project_id}/?token={token}", base, len(ids), r, stats)
        )
        for token, r in zip(viewers, readies, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    session = requests.Session()
    session.headers["Authorization"] = f"Token {owner}"
    sent = time.perf_counter()
    response = await asyncio.to_thread(
        session.post,
        f"{base}/api/projects/{project_id}/annotations/review/",
        json={"ids": ids, "review_state": state},
        timeout=600,
    )
    answered = time.perf_counter()
    assert response.status_code == 200, response.text
    assert len(response.json()["updated"]) == len(ids), response.text[:300]
    done = [t for t in await asyncio.gather(*watchers) if t is not None]
    return {
        "request ms": (answered - sent) * 1000,
        "delivered ms": (max(done) - sent) * 1000 if done else float("nan"),
        "catch-ups": stats["catch-ups"],
        "closed": stats["closed"],
    }


def row_text(name: str, row: dict[str, float]) -> str:
    return (
        f"{name:<32} request {row['request ms']:8.0f} ms  delivered {row['delivered ms']:8.0f} ms"
        f"  catch-ups {row['catch-ups']:4.0f}  closed {row['closed']:3.0f}"
    )


def restart_web(profile: TeamProfile, batch: str) -> None:
    """The web server again, with ``SAM_BROADCAST_BATCH=batch`` (its default when empty)."""
    profile.stop()
    profile.procs.clear()
    profile.env.pop("SAM_BROADCAST_BATCH", None)
    if batch:
        profile.env["SAM_BROADCAST_BATCH"] = batch
    profile.spawn_web()
    profile.wait_for_web()


def annotate(profile: TeamProfile, project_id: int, count: int) -> list[int]:
    script = ANNOTATE.format(project=project_id, count=count)
    line = next(x for x in profile.manage("shell", stdin=script).splitlines() if x[:3] == "IDS")
    return [int(x) for x in line.split()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=2000)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--web-processes", type=int, default=1)
    args = parser.parse_args()
    configs = {"baseline (1 event per message)": "1", "ours (batched)": ""}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    print(
        f"machine: {os.cpu_count()} CPUs; production settings, Postgres + Redis channel layer, "
        f"uvicorn ({args.web_processes} process(es)) on loopback; {args.annotations} "
        f"annotations in one review request, {args.viewers} sockets watching"
    )
    with tempfile.TemporaryDirectory() as tmp, fresh_stack(use_pg=True) as extra_env:
        profile = TeamProfile(Path(tmp) / uuid.uuid4().hex[:6], extra_env, args.web_processes)
        try:
            project_id, tokens = profile.start_team(0, 0, args.viewers)
            base = f"http://127.0.0.1:{profile.port}"
            owner = tokens["owner"][0]
            team_content(base, project_id, owner, 9)
            ids = annotate(profile, project_id, args.annotations)
            states = ["rejected", "accepted"]  # server-side writes start accepted
            order = list(configs.items())
            for round_ in range(args.rounds):
                # Each configuration goes first, and rejects (which also reopens images), in
                # every other round.
                for step, (name, batch) in enumerate(order if round_ % 2 == 0 else order[::-1]):
                    restart_web(profile, batch)
                    state = states[step % 2]
                    row = asyncio.run(
                        review_round(base, project_id, owner, tokens["viewer"], ids, state)
                    )
                    results[name].append(row)
                    print(f"round {round_ + 1} {row_text(name, row)}")
        except Exception:
            print_logs(profile)
            raise
        finally:
            profile.stop()
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in results.items()
    }
    for name, row in medians.items():
        print(f"median  {row_text(name, row)}")
    baseline, ours = medians.values()
    print(
        f"delivery {baseline['delivered ms'] / ours['delivered ms']:.2f}x faster, request "
        f"{baseline['request ms'] / ours['request ms']:.2f}x faster (baseline / ours, medians)"
    )


if __name__ == "__main__":
    main()
