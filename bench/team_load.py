"""Team mode of bench/api_load.py (``--think-time``): a working team on the production
profile. See api_load.py's docstring; run it through api_load.py."""

import asyncio
import os
import random
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import requests
from api_load import SIZE, LoadProfile, Run, fresh_stack, png
from pipeline_overhead import PY

EDIT_SHARE = 0.4  # the share of writes that edit an annotation (the others create one)
TEAM_SETUP = """
from django.contrib.auth import get_user_model
from samapp.services.api_tokens import api_token_create
from samapp.services.projects import project_create, member_add
User = get_user_model()
owner = User.objects.create_user(username="owner", password="x")
project = project_create(name="team", created_by=owner, labels=[])
rows = [("owner", api_token_create(user=owner)[1])]
for role, count in (("annotator", {annotators}), ("reviewer", {reviewers}), ("viewer", {viewers})):
    for i in range(count):
        user = User.objects.create_user(username=f"{{role}}{{i}}", password="x")
        member_add(project=project, user=user, role=role)
        rows.append((role, api_token_create(user=user)[1]))
print("SETUP", project.pk, " ".join(f"{{r}}:{{t}}" for r, t in rows))
"""


class TeamProfile(LoadProfile):
    """Production settings on Postgres + Redis, uvicorn with ``web_processes`` workers."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str], web_processes: int) -> None:
        super().__init__(
            "team",
            data_dir,
            {
                **extra_env,
                "DJANGO_SETTINGS_MODULE": "backend.settings.production",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_LOG_LEVEL": "WARNING",
            },
        )
        self.web_processes = web_processes

    def spawn_web(self) -> None:
        self.spawn(
            "web",
            *(PY, "-m", "uvicorn", "backend.asgi:application", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--workers", str(self.web_processes)),
            *("--no-access-log", "--log-level", "warning"),
            # Above the longest think time: with uvicorn's 5 s default an annotator's next
            # request can race the server closing its idle keep-alive connection (a reset).
            *("--timeout-keep-alive", "75"),
        )

    def start_team(self, annotators: int, reviewers: int, viewers: int) -> tuple[int, dict]:
        self.manage("migrate", "-v", "0")
        setup = TEAM_SETUP.format(annotators=annotators, reviewers=reviewers, viewers=viewers)
        line = next(x for x in self.manage("shell", stdin=setup).splitlines() if x[:5] == "SETUP")
        _, project_id, *pairs = line.split()
        tokens: dict[str, list[str]] = {}
        for pair in pairs:
            role, token = pair.split(":")
            tokens.setdefault(role, []).append(token)
        self.spawn_web()
        self.wait_for_web()
        return int(project_id), tokens

    def web_cpu_seconds(self) -> float:
        """User + system CPU of the web server's process group (the master and its workers)."""
        group = self.procs[0].pid
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group:  # pgrp
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return total


class TeamRun(Run):
    """One steady phase of a team at work for ``duration`` seconds."""

    def __init__(self, base: str, project_id: int, deadline: float, seed: int) -> None:
        super().__init__(base, project_id, deadline)
        self.rng = random.Random(seed)
        self.writer_of: dict[tuple[int, int], int] = {}  # (id, version) -> socket index
        self.review_requests = 0

    def record_by(self, payload: dict[str, Any], sent: float, socket: int) -> None:
        self.record(payload, sent)
        self.writer_of[(payload["id"], payload["version"])] = socket

    async def write(
        self, session: requests.Session, image: int, own: dict[int, int], seed: int, edit: bool
    ) -> tuple[dict[str, Any], float] | None:
        """A new annotation on ``image``, or (``edit``) a new mask for this annotator's last
        one there, retried on 412 (a reviewer's accept moves its version meanwhile)."""
        if not edit or image not in own:
            created, sent = await self.create(session, image, seed)
            own[image] = created["id"]
            return created, sent
        target = own[image]
        return await self.patch(session, target, await self.version_of(session, target), seed)

    async def annotator(  # type: ignore[override]
        self, index: int, token: str, image: int, shared: int, spec: dict[str, float]
    ) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        rng = random.Random(self.rng.random())
        own: dict[int, int] = {}  # image -> this annotator's latest annotation there
        step = 0
        while True:
            await asyncio.sleep(rng.expovariate(1 / spec["think"]))
            if time.monotonic() >= spec["end"]:
                return
            step += 1
            target = shared if rng.random() < spec["contended"] else image
            seed = index * 100_000 + step
            written = await self.write(session, target, own, seed, edit=rng.random() < EDIT_SHARE)
            if written is not None:
                self.record_by(*written, index)

    async def reviewer(self, token: str, spec: dict[str, float]) -> None:
        """Bulk-accepts the newest writes every few think times, as a reviewer works."""
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        rng = random.Random(self.rng.random())
        while True:
            await asyncio.sleep(rng.expovariate(1 / (spec["think"] * 4)))
            if time.monotonic() >= spec["end"]:
                return
            ids = sorted({annotation for annotation, _, _ in self.writes[-20:]})
            if not ids:
                continue
            response, _ = await self.http(
                session,
                "POST",
                f"/api/projects/{self.project_id}/annotations/review/",
                json={"ids": ids, "review_state": "accepted"},
            )
            if response.status_code >= 500:
                raise RuntimeError(response.text)
            self.review_requests += 1

    async def team(
        self, tokens: dict[str, list[str]], images: list[int], shared: int, spec: dict
    ) -> float:
        spec = {**spec, "end": time.monotonic() + spec["duration"]}
        return await self.observe(
            tokens["annotator"] + tokens["reviewer"] + tokens["viewer"],
            lambda: asyncio.gather(
                *(
                    self.annotator(i, token, images[i], shared, spec)
                    for i, token in enumerate(tokens["annotator"])
                ),
                *(self.reviewer(token, spec) for token in tokens["reviewer"]),
            ),
        )

    def team_report(self, elapsed: float, cpu: float) -> dict[str, Any]:
        write_ms = np.array(self.latencies) * 1000
        broadcast_ms, lost = [], 0
        for annotation, version, sent in self.writes:
            key = (annotation, version)
            others = [seen for i, seen in enumerate(self.received) if i != self.writer_of.get(key)]
            missing = sum(key not in seen for seen in others)
            lost += missing
            if not missing:
                broadcast_ms.append((max(seen[key] for seen in others) - sent) * 1000)
        # Broadcast is timed to the last member: one lagging socket sets it. Each socket's
        # median lag tells one laggard from a room that is late for everybody.
        sent_at = {(a, v): t for a, v, t in self.writes}
        per_socket = sorted(
            float(np.median([seen[key] - t for key, t in sent_at.items() if key in seen])) * 1000
            for seen in self.received
            if seen
        )
        writes = len(self.writes) + self.review_requests

        def pct(values: Any, q: float) -> float:
            return float(np.percentile(values, q)) if len(values) else float("nan")

        return {
            "writes": len(self.writes),
            "reviews": self.review_requests,
            "requests": len(self.latencies),
            "conflicts": self.statuses.get(412, 0),
            "writes_per_s": len(self.writes) / elapsed,
            **{f"write p{q}": pct(write_ms, q) for q in (50, 95, 99)},
            **{f"broadcast p{q}": pct(broadcast_ms, q) for q in (50, 95, 99)},
            "lost_broadcasts": lost,
            "cpu_ms_per_write": cpu / max(writes, 1) * 1000,
            "delivery": dict(self.listener_stats),
            "socket lag": (
                f"sockets' median lag: median {np.median(per_socket):.0f} ms, "
                f"slowest {per_socket[-1]:.0f} ms"
                if per_socket
                else ""
            ),
        }


def team_content(base: str, project_id: int, owner: str, count: int) -> tuple[list[int], int]:
    """One image per annotator, and one more that every annotator works on now and then."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {owner}"
    images = []
    for i in range(count + 1):
        response = session.post(
            f"{base}/api/projects/{project_id}/images/",
            files={"file": (f"{i}.png", png(), "image/png")},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        images.append(response.json()["created"][0]["id"])
    return images[:-1], images[-1]


def phase(
    profile: TeamProfile, args: Any, count: int, reviewers: int, viewers: int
) -> tuple[dict[str, Any], int]:
    """One team of ``count`` annotators at work; its report and the lost updates."""
    from api_load import lost_updates, print_logs

    try:
        project_id, tokens = profile.start_team(count, reviewers, viewers)
        base = f"http://127.0.0.1:{profile.port}"
        owner = tokens["owner"][0]
        images, shared = team_content(base, project_id, owner, count)
        run = TeamRun(base, project_id, time.monotonic() + args.duration + 60, args.seed)
        spec = {"think": args.think_time, "contended": args.contended, "duration": args.duration}
        cpu_before = profile.web_cpu_seconds()
        elapsed = asyncio.run(run.team(tokens, images, shared, spec))
        cpu = profile.web_cpu_seconds() - cpu_before
        return run.team_report(elapsed, cpu), lost_updates(base, project_id, owner, [run])
    except Exception:
        print_logs(profile)
        raise
    finally:
        profile.stop()


def run_team(args: Any, tmp: Path) -> None:
    """Every (web processes, annotators) pair on a fresh database, then the summary lines."""
    counts = [int(n) for n in str(args.annotators).split(",")]
    processes = [int(n) for n in str(args.web_processes).split(",")]
    print(
        f"machine: {os.cpu_count()} CPUs; production settings, Postgres + Redis channel layer, "
        f"uvicorn on loopback; think time {args.think_time} s (exponential), "
        f"{args.contended:.0%} of writes on one image everybody works on, "
        f"{args.duration:.0f} s per phase; image {SIZE[1]}x{SIZE[0]}"
    )
    header = (
        f"{'web':>4}{'N':>5}{'writes':>7}{'w/s':>6}{'412s':>6}"
        f"{'w p50':>7}{'w p95':>7}{'w p99':>7}{'b p50':>7}{'b p95':>7}{'b p99':>7}"
        f"{'lost b':>7}{'lost u':>7}{'cpu ms/w':>9}"
    )
    last = None
    for web in processes:
        for count in counts:
            reviewers, viewers = max(1, count // 25), max(1, count // 10)
            with fresh_stack(use_pg=True) as extra_env:
                profile = TeamProfile(
                    tmp / f"web{web}-n{count}-{uuid.uuid4().hex[:6]}", extra_env, web
                )
                row, lost = phase(profile, args, count, reviewers, viewers)
            if last is None:
                print(header)
            last = (row, lost)
            print(
                f"{web:>4}{count:>5}{row['writes']:>7}{row['writes_per_s']:>6.1f}"
                f"{row['conflicts']:>6}{row['write p50']:>7.0f}{row['write p95']:>7.0f}"
                f"{row['write p99']:>7.0f}{row['broadcast p50']:>7.0f}"
                f"{row['broadcast p95']:>7.0f}{row['broadcast p99']:>7.0f}"
                f"{row['lost_broadcasts']:>7}{lost:>7}{row['cpu_ms_per_write']:>9.1f}"
                f"   delivery {row['delivery']}, {row['reviews']} bulk reviews; {row['socket lag']}"
            )
    assert last is not None
    row, lost = last
    print(
        f"write p95 {row['write p95']:.0f} ms, broadcast p95 {row['broadcast p95']:.0f} ms, "
        f"lost {lost + row['lost_broadcasts']}"
    )
