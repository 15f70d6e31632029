"""Run in a subprocess against a throwaway Postgres database (DATABASE_URL in the env):

    python -m tests.security.pg_scenarios writers WRITERS WRITES
    python -m tests.security.pg_scenarios seed IMAGES   # images with pending embeddings

writers: WRITERS threads each land WRITES read-modify-write updates on one annotation, retrying on
412 (a stale version): each update appends the writer's token to ``prompts["log"]``. A lost
update would drop a token. Prints one JSON object on the last line of stdout."""

import json
import os
import random
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from samapp.errors import VersionConflictError  # noqa: E402
from samapp.models import Annotation, AnnotationEvent  # noqa: E402
from samapp.services.annotations import annotation_create, annotation_update  # noqa: E402
from samapp.services.projects import project_create  # noqa: E402
from tests.conftest import rle_box  # noqa: E402
from tests.production.pg_pipeline import _image  # noqa: E402


def run(writers: int, writes: int) -> dict:
    user = get_user_model().objects.create_user(username="w")
    project = project_create(name="P", created_by=user, labels=[])
    image = _image(project, size=(8, 6))
    annotation = annotation_create(image=image, author=user, rle=rle_box(6, 8))
    barrier = threading.Barrier(writers)
    lock = threading.Lock()
    stats = {"ok": 0, "conflicts": 0, "other": []}

    def write(index: int) -> None:
        rng = random.Random(index)
        try:
            barrier.wait()
            for step in range(writes):
                while True:
                    current = Annotation.objects.get(pk=annotation.pk)
                    log = [*current.prompts.get("log", []), f"{index}:{step}"]
                    try:
                        annotation_update(
                            annotation=current,
                            expected_version=current.version,
                            data={"prompts": {"log": log}},
                        )
                        with lock:
                            stats["ok"] += 1
                        break
                    except VersionConflictError:
                        with lock:
                            stats["conflicts"] += 1
                        time.sleep(rng.uniform(0, 0.004))
        except Exception as exc:  # reported; fails the test
            with lock:
                stats["other"].append(repr(exc))
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    final = Annotation.objects.get(pk=annotation.pk)
    seqs = list(
        AnnotationEvent.objects.filter(project=project)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    return {
        **stats,
        "seconds": round(seconds, 2),
        "final_version": final.version,
        "log": final.prompts.get("log", []),
        "seqs_ok": seqs == list(range(1, len(seqs) + 1)),
        "events": len(seqs),
    }


def seed(count: int) -> dict:
    from django.db import transaction

    from samapp.services.embeddings import embeddings_schedule

    user = get_user_model().objects.create_user(username="seed")
    project = project_create(name="P", created_by=user, labels=[])
    with transaction.atomic():
        images = [_image(project, color=(i, 40, 200), size=(64, 48)) for i in range(count)]
        embeddings = embeddings_schedule(images=images, model_key="sam_tiny")
    return {"embedding_ids": [e.pk for e in embeddings]}


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        print(json.dumps(seed(int(sys.argv[2]))))
    else:
        print(json.dumps(run(int(sys.argv[2]), int(sys.argv[3]))))
