"""Server cost of one annotation write, in process: CPU and SQL queries per create and per
If-Match PATCH, through the real REST stack (token auth, DRF, services, event log, the
broadcast to the Redis channel layer) on Postgres, without the HTTP server or the network.

    python bench/write_path.py [--writes 200] [--profile 25]

Prints, per kind of write, the process CPU per write (p50 / mean, after warm-up) and the
queries per write, then with ``--profile N`` a profiled pass of as many PATCHes again: Python
function calls per PATCH (a figure that, unlike CPU time, the machine's load does not move)
and the top N functions by cumulative and by own CPU time. Needs Postgres and Redis on
127.0.0.1 (a throwaway database ``bench_write_path`` is created and dropped)."""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

DB_NAME = "bench_write_path"
ADMIN_DB = "postgresql://postgres@127.0.0.1:5432/postgres"


def setup_django() -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="backend.settings.production",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}",
        REDIS_URL="redis://127.0.0.1:6379/13",
        CHANNEL_LAYER_PREFIX=f"bench-write-{os.getpid()}",
        SAM_DATA_DIR=tempfile.mkdtemp(prefix="bench-write-"),
        DJANGO_SECRET_KEY="bench-only-" + "x" * 50,
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_LOG_LEVEL="WARNING",
        DJANGO_SECURE_SSL_REDIRECT="false",
    )
    import psycopg

    with psycopg.connect(ADMIN_DB, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_db() -> None:
    from django.db import connections

    connections.close_all()
    import psycopg

    with psycopg.connect(ADMIN_DB, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def world() -> tuple[Any, Any, list[int]]:
    from api_load import SIZE, png
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from rest_framework.test import APIClient

    from samapp.models import Image
    from samapp.services.api_tokens import api_token_create
    from samapp.services.projects import member_add, project_create

    user_model = get_user_model()
    owner = user_model.objects.create_user(username="owner", password="x")
    project = project_create(name="write path", created_by=owner, labels=[])
    for i in range(20):  # a team: membership lookups see more than one row
        member_add(
            project=project,
            user=user_model.objects.create_user(username=f"m{i}", password="x"),
            role="annotator",
        )
    images = []
    for i in range(4):
        image = Image(
            project=project,
            width=SIZE[1],
            height=SIZE[0],
            sha256=f"{i:064x}",
            original_name=f"{i}.png",
            format="png",
        )
        image.file.save(f"bench-{i}.png", ContentFile(png()), save=False)
        image.save()
        images.append(image.pk)
    client = APIClient(SERVER_NAME="testserver")
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=owner)[1]}")
    return project, client, images


def measure(writes: int, top: int) -> None:
    from api_load import rle
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, client, images = world()
    base = f"/api/projects/{project.pk}"
    created: list[tuple[int, int]] = []
    cpu: dict[str, list[float]] = {"create": [], "patch": []}
    queries: dict[str, list[int]] = {"create": [], "patch": []}

    def create(i: int) -> None:
        with CaptureQueriesContext(connection) as ctx:
            start = time.process_time()
            response = client.post(
                f"{base}/images/{images[i % len(images)]}/annotations/",
                {"rle": rle(i), "source": "click"},
                format="json",
            )
            cpu["create"].append(time.process_time() - start)
        assert response.status_code == 201, response.content
        queries["create"].append(len(ctx.captured_queries))
        body = response.json()
        created.append((body["id"], body["version"]))

    def patch(i: int, *, record: bool = True) -> None:
        target, version = created[i % len(created)]
        with CaptureQueriesContext(connection) as ctx:
            start = time.process_time()
            response = client.patch(
                f"{base}/annotations/{target}/",
                {"rle": rle(10_000 + i)},
                format="json",
                HTTP_IF_MATCH=f'"{version}"',
            )
            spent = time.process_time() - start
        assert response.status_code == 200, response.content
        if record:  # the profiled pass is slower: it must not count in the CPU figures
            cpu["patch"].append(spent)
            queries["patch"].append(len(ctx.captured_queries))
        created[i % len(created)] = (target, response.json()["version"])

    warm = 20
    for i in range(writes + warm):
        create(i)
    for i in range(warm):
        patch(i)
    cpu["patch"].clear()
    queries["patch"].clear()
    for i in range(warm, writes + warm):
        patch(i)
    profiler = cProfile.Profile(time.process_time)
    if top:  # a separate pass: the profiler's own cost would count in the CPU figures
        profiler.enable()
        for i in range(writes + warm, 2 * writes + warm):
            patch(i, record=False)
        profiler.disable()
    print(f"{'write':<8} {'cpu p50 ms':>10} {'cpu mean ms':>11} {'queries p50':>12}")
    for kind in ("create", "patch"):
        times = cpu[kind][warm:] if kind == "create" else cpu[kind]
        print(
            f"{kind:<8} {statistics.median(times) * 1e3:>10.2f} "
            f"{statistics.fmean(times) * 1e3:>11.2f} "
            f"{statistics.median(queries[kind][warm:]):>12.0f}"
        )
    if top:
        calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
        print(f"python function calls per PATCH: {calls / writes:.0f} (profiled pass)")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = parser.parse_args()
    setup_django()
    try:
        measure(args.writes, args.profile)
    finally:
        drop_db()


if __name__ == "__main__":
    main()
