"""A bulk review reaching a watching team: a reviewer accepts (then rejects, and so on) every
one of N annotations in one request while K teammates hold the project websocket, on the
production profile (Postgres + Redis channel layer, production settings, uvicorn).

    python bench/bulk_review.py [--annotations 2000] [--viewers 20] [--rounds 2]
                                [--web-processes 1] [--baseline-rev ab92ce5]

Each round is one ``POST /annotations/review/`` of all N ids. Per round it reports the request's
time, the time from the request to the moment the last socket holds the change of all N
annotations (as the app's client does: in ``seq`` order, asking ``catch_up`` on a gap), the
bytes of annotation events each socket received, the gap catch-ups the sockets needed and the
sockets the server closed as too slow.

Baseline in the same run, on the same database: the web server started from a worktree of
``--baseline-rev``, the last revision that logged and broadcast one full ``annotation.updated``
(mask included) per reviewed annotation; ours sends one ``annotations.reviewed`` naming them
all. Each round reviews twice, rejecting then accepting; the configurations swap places every
round, so with an even ``--rounds`` each goes first and rejects as often as the other.
Last line: the delivery ratio (baseline / ours, medians)."""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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


def annotations_in(event: str, payload: dict) -> int:
    """How many annotations' changes an annotation log event carries."""
    return len(payload["annotations"]) if event == "annotations.reviewed" else 1


async def watch(
    url: str, origin: str, expected: int, ready: asyncio.Event, stats: dict[str, int]
) -> float | None:
    """One teammate's socket: the time (perf_counter) it held the changes of `expected`
    annotations in seq order, or None if the server closed it first."""
    async with websockets.connect(url, origin=origin, max_queue=None) as ws:
        hello = json.loads(await ws.recv())
        last = hello["payload"]["seq"]
        got: dict[int, int] = {}  # seq → annotations, for events past a gap
        held = 0
        pending = False
        ready.set()
        while held < expected:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=60)
            except (TimeoutError, websockets.ConnectionClosed):
                stats["closed"] += 1
                return None
            message = json.loads(raw)
            event, payload = message["event"], message["payload"]
            if event == "caught_up":
                pending = bool(payload.get("more")) or max(got, default=last) > last
                if pending:
                    await ws.send(json.dumps({"action": "catch_up", "after": last}))
                continue
            if not event.startswith("annotation") or payload.get("seq", 0) <= last:
                continue
            stats["bytes"] += len(raw)
            got[payload["seq"]] = annotations_in(event, payload)
            while last + 1 in got:
                held += got.pop(last + 1)
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
    stats = {"closed": 0, "catch-ups": 0, "bytes": 0}
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
        "KiB/socket": stats["bytes"] / 1024 / len(viewers),
        "catch-ups": stats["catch-ups"],
        "closed": stats["closed"],
    }


def row_text(name: str, row: dict[str, float]) -> str:
    return (
        f"{name:<9} request {row['request ms']:7.0f} ms  delivered {row['delivered ms']:7.0f} ms"
        f"  {row['KiB/socket']:8.1f} KiB/socket  catch-ups {row['catch-ups']:3.0f}"
        f"  closed {row['closed']:3.0f}"
    )


def restart_web(profile: TeamProfile, code_dir: Path) -> None:
    """The web server again, running the code of `code_dir`."""
    profile.stop()
    profile.procs.clear()
    profile.code_dir = code_dir
    profile.spawn_web()
    profile.wait_for_web()


def baseline_worktree(rev: str, parent: Path) -> Path:
    """A detached worktree of `rev` under `parent` (removed with `git worktree prune` once
    `parent` is gone)."""
    path = parent / f"baseline-{rev}"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(path), rev], cwd=ROOT, check=True
    )
    return path


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
    parser.add_argument("--baseline-rev", default="ab92ce5")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} CPUs; production settings, Postgres + Redis channel layer, "
        f"uvicorn ({args.web_processes} process(es)) on loopback; {args.annotations} "
        f"annotations in one review request, {args.viewers} sockets watching"
    )
    with tempfile.TemporaryDirectory() as tmp, fresh_stack(use_pg=True) as extra_env:
        profile = TeamProfile(Path(tmp) / uuid.uuid4().hex[:6], extra_env, args.web_processes)
        configs = {"baseline": baseline_worktree(args.baseline_rev, Path(tmp)), "ours": ROOT}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
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
                for step, (name, code_dir) in enumerate(order if round_ % 2 == 0 else order[::-1]):
                    restart_web(profile, code_dir)
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
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in results.items()
    }
    for name, row in medians.items():
        print(f"median  {row_text(name, row)}")
    baseline, ours = medians.values()
    print(
        f"delivery {baseline['delivered ms'] / ours['delivered ms']:.2f}x faster, request "
        f"{baseline['request ms'] / ours['request ms']:.2f}x faster, "
        f"{baseline['KiB/socket'] / ours['KiB/socket']:.1f}x fewer bytes per socket "
        "(baseline / ours, medians)"
    )


if __name__ == "__main__":
    main()
