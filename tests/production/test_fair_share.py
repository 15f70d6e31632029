"""Fair share with real workers (Celery on Redis, Postgres, production settings), started as
scripts/run.sh starts them: one worker for the "embeddings" queue, one for the long jobs.

Project A queues a bulk upload and a maximal segment-everything job (64 points per side);
while both run, project B uploads one image. B's embedding must come after at most two of
A's (the one being encoded when B's upload arrived, and at most one claimed in the same
instant), not after A's whole upload, and the long job must not hold it back. The test
prints B's latency in seconds and in encoder runs, and the encoder time of one image."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.production.conftest import (
    REDIS,
    REDIS_BROKER_URL,
    REDIS_LAYER_URL,
    pg_query,
    production_env,
    require,
    run_scenario,
)
from tests.production.test_celery_worker import (
    WORKER_ARGS,
    checkpoint_missing,
    purge,
    start_worker,
    wait_for,
)

__all__ = ["start_worker"]  # the fixture

pytestmark = [pytest.mark.services, pytest.mark.slow]

# Enough that A still has a queue when B's upload lands: the encoder can take 0.15 s an
# image while B's upload (a fresh Django process) takes seconds.
A_IMAGES = 60
JOBS_WORKER_ARGS = ("-Q", "default", *WORKER_ARGS[2:])


def ready_at(url: str, embedding_ids: list[int]) -> dict[int, object]:
    rows = pg_query(
        url,
        "SELECT id, updated_at FROM samapp_embedding WHERE id = ANY(%s) AND status = 'ready'",
        (embedding_ids,),
    )
    return dict(rows)


def job_state(url: str, job_id: int) -> str:
    [(state,)] = pg_query(url, "SELECT state FROM samapp_segmentjob WHERE id = %s", (job_id,))
    return str(state)


def test_one_image_of_b_overtakes_a_bulk_upload_and_a_maximal_job_of_a(
    pg_migrated: str, tmp_path: Path, start_worker: Callable[..., Path]
) -> None:
    require("Redis", REDIS)
    purge(REDIS_BROKER_URL)
    extra = {"CELERY_BROKER_URL": REDIS_BROKER_URL, "REDIS_URL": REDIS_LAYER_URL}
    extra["SAM_EMBEDDING_BATCH_SIZE"] = "1"  # one image per encoder run: the strictest case
    if checkpoint_missing():
        extra["SAM_RANDOM_INIT_FALLBACK"] = "true"
    env = production_env(pg_migrated, tmp_path / "data", **extra)
    log = start_worker(env)
    jobs_log = start_worker(env, JOBS_WORKER_ARGS)

    a = run_scenario(env, "project", "Fair share A")["project_id"]
    b = run_scenario(env, "project", "Fair share B")["project_id"]
    first = run_scenario(env, "upload-to", str(a), "2", "500")["embedding_ids"]
    wait_for(lambda: len(ready_at(pg_migrated, first)) == 2, 240, "A's first embeddings", log)
    job_id = run_scenario(env, "segment", str(a), "64")["job_id"]
    wait_for(lambda: job_state(pg_migrated, job_id) == "running", 240, "A's job", jobs_log)
    # A's bulk upload lands once its job runs, so that B arrives while A's queue is long.
    a_ids = run_scenario(env, "upload-to", str(a), str(A_IMAGES), "502")["embedding_ids"]

    state_at_upload = job_state(pg_migrated, job_id)
    a_before = len(ready_at(pg_migrated, a_ids))
    [b_id] = run_scenario(env, "upload-to", str(b), "1", "900")["embedding_ids"]
    [(uploaded_at,)] = pg_query(
        pg_migrated, "SELECT created_at FROM samapp_embedding WHERE id = %s", (b_id,)
    )
    b_ready = wait_for(lambda: ready_at(pg_migrated, [b_id]), 240, "B's embedding", log)[b_id]
    a_done = ready_at(pg_migrated, a_ids)
    overtaken_by = sum(1 for at in a_done.values() if uploaded_at < at < b_ready)
    state_at_ready = job_state(pg_migrated, job_id)
    [(encoder_seconds,)] = pg_query(
        pg_migrated,
        "SELECT avg(compute_seconds) FROM samapp_embedding WHERE id = ANY(%s) AND status = 'ready'",
        (a_ids,),
    )
    latency = (b_ready - uploaded_at).total_seconds()
    print(
        f"\nB's embedding ready {latency:.2f} s after its upload, after {overtaken_by} of A's "
        f"{A_IMAGES} (A had {a_before} ready at the upload, {len(a_done)} at B's ready); "
        f"encoder time per image {encoder_seconds:.2f} s; A's 64-point segment job: "
        f"{state_at_upload} at B's upload, {state_at_ready} at B's ready"
    )
    assert overtaken_by <= 2, log.read_text(errors="replace")[-4000:]
    a_ready_at_upload = sum(1 for at in a_done.values() if at < uploaded_at)
    assert a_ready_at_upload < A_IMAGES, "A's queue was empty when B arrived: nothing was tested"
    assert len(a_done) < A_IMAGES  # B did not wait for A's whole upload
    received = "Task samapp.tasks.segment_job_run_task["
    assert received in jobs_log.read_text(errors="replace")
    assert received not in log.read_text(errors="replace")
