"""Run inside a subprocess against a throwaway Postgres database (DATABASE_URL in the env):

    python -m tests.production.pg_pipeline writers N ROUNDS   # concurrent annotation writers
    python -m tests.production.pg_pipeline seed               # a project, an image, its embedding

Prints one JSON object on the last line of stdout."""

import json
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from samapp.errors import VersionConflictError  # noqa: E402
from samapp.models import Annotation, Image  # noqa: E402
from samapp.services.annotations import annotation_create, annotation_update  # noqa: E402
from samapp.services.projects import project_create  # noqa: E402
from tests.conftest import png_bytes, rle_box  # noqa: E402


def _image(project, color=(9, 99, 199), size=(64, 48)) -> Image:
    import hashlib

    from django.core.files.base import ContentFile

    content = png_bytes(size[0], size[1], color)
    image = Image(
        project=project,
        original_name="a.png",
        sha256=hashlib.sha256(content).hexdigest(),
        format="PNG",
        width=size[0],
        height=size[1],
    )
    image.file.save("a.png", ContentFile(content), save=False)
    image.save()
    return image


def writers(count: int, rounds: int) -> dict:
    user = get_user_model().objects.create_user(username="w")
    project = project_create(name="P", created_by=user, labels=[])
    image = _image(project, size=(8, 6))
    annotation = annotation_create(image=image, author=user, rle=rle_box(6, 8))
    barrier = threading.Barrier(count)
    results = {"ok": 0, "conflicts": 0, "other": []}
    lock = threading.Lock()

    def write(index: int) -> None:
        try:
            barrier.wait()
            for step in range(rounds):
                current = Annotation.objects.get(pk=annotation.pk)
                box = (index % 4, step % 3, 4 + index % 4, 3 + step % 3)
                try:
                    annotation_update(
                        annotation=current,
                        expected_version=current.version,
                        data={"rle": rle_box(6, 8, box)},
                    )
                    with lock:
                        results["ok"] += 1
                except VersionConflictError as exc:  # losing the race is allowed
                    assert exc.status_code == 412  # noqa: PT017
                    with lock:
                        results["conflicts"] += 1
        except Exception as exc:  # reported, and fails the test
            with lock:
                results["other"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = Annotation.objects.get(pk=annotation.pk)
    from samapp.models import AnnotationEvent

    seqs = list(
        AnnotationEvent.objects.filter(project=project)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    return {**results, "final_version": final.version, "seqs": seqs}


def seed() -> dict:
    from django.db import transaction

    from samapp.services.embeddings import embeddings_schedule

    user = get_user_model().objects.create_user(username="s")
    project = project_create(name="P", created_by=user, labels=[])
    with transaction.atomic():
        image = _image(project)
        (embedding,) = embeddings_schedule(images=[image], model_key="sam_tiny")
    return {"embedding_id": embedding.pk, "project_id": project.pk}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "writers":
        out = writers(int(sys.argv[2]), int(sys.argv[3]))
    elif command == "seed":
        out = seed()
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(out))
