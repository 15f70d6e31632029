"""Service-layer scenarios run in a subprocess under the settings its env names (production,
with DATABASE_URL at a throwaway Postgres database), as the web process would run them:

    python -m tests.production.scenario upload PROJECT_NAME COUNT FIRST_INDEX
    python -m tests.production.scenario project PROJECT_NAME
    python -m tests.production.scenario upload-to PROJECT_ID COUNT FIRST_INDEX
    python -m tests.production.scenario read PROJECT_ID
    python -m tests.production.scenario segment PROJECT_ID POINTS_PER_SIDE

Prints one JSON object on the last line of stdout."""

import io
import json
import os
import sys
from typing import Any, BinaryIO

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.production")

import django

django.setup()

import PIL.Image  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Q  # noqa: E402

from backend.celery import ensure_broker_spool  # noqa: E402
from samapp.ml.synthetic import generate_scene  # noqa: E402
from samapp.models import Embedding, Image, Project  # noqa: E402
from samapp.selectors.projects import label_list, project_list  # noqa: E402
from samapp.services.projects import project_create  # noqa: E402
from samapp.services.segment import segment_job_start  # noqa: E402
from samapp.services.uploads import images_create, uploads_check  # noqa: E402

SEED = 7_000_003


def png(index: int) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(generate_scene(SEED, index).image).save(buffer, format="PNG")
    return buffer.getvalue()


def owner() -> Any:
    """The scenario's user: $SCENARIO_USER, so that tests sharing a database stay apart."""
    username = os.environ.get("SCENARIO_USER", "scenario-owner")
    return get_user_model().objects.get_or_create(username=username)[0]


def project(name: str) -> dict[str, Any]:
    created = project_create(
        name=name, created_by=owner(), labels=[("shape", "#ff0000"), ("other", "#00ff00")]
    )
    return {"project_id": created.pk}


def upload_to(project_id: int, count: int, first: int) -> dict[str, Any]:
    """Upload scenes ``first..first+count-1`` twice: the second time they are duplicates."""
    ensure_broker_spool()  # used when no broker URL is configured
    target = Project.objects.get(pk=project_id)
    user = owner()

    def files() -> list[tuple[str, BinaryIO]]:
        return [(f"scene-{i}.png", io.BytesIO(png(i))) for i in range(first, first + count)]

    created = images_create(project=target, uploaded_by=user, images=uploads_check(files=files()))
    again = images_create(project=target, uploaded_by=user, images=uploads_check(files=files()))
    shas = [image.sha256 for image in created.created]
    return {
        "project_id": target.pk,
        "created": len(created.created),
        "duplicates_second_time": len(again.duplicates),
        "sha256": shas,
        "embedding_ids": list(
            Embedding.objects.filter(image_sha256__in=shas, model_key=target.default_model_key)
            .filter(Q(project=target) | Q(project__isnull=True))
            .order_by("id")
            .values_list("id", flat=True)
        ),
        "database_vendor": django.db.connection.vendor,
    }


def upload(name: str, count: int, first: int) -> dict[str, Any]:
    return upload_to(project(name)["project_id"], count, first)


def read(project_id: int) -> dict[str, Any]:
    user = owner()
    target = Project.objects.get(pk=project_id)
    listed = project_list(user=user).get(pk=project_id)
    return {
        "visible_projects": project_list(user=user).count(),
        "image_count": listed.image_count,  # type: ignore[attr-defined]
        "images": Image.objects.filter(project=target).count(),
        "labels": sorted(label.name for label in label_list(project=target)),
    }


def segment(project_id: int, points_per_side: int) -> dict[str, Any]:
    """Segment everything on the project's first image (a job on the "default" queue)."""
    image = Image.objects.filter(project_id=project_id).order_by("id").first()
    assert image is not None, "upload an image first"
    with transaction.atomic():
        job = segment_job_start(
            image=image, user=owner(), options={"points_per_side": points_per_side}
        )
    return {"job_id": job.pk}


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "upload":
        result = upload(args[0], int(args[1]), int(args[2]))
    elif command == "project":
        result = project(args[0])
    elif command == "upload-to":
        result = upload_to(int(args[0]), int(args[1]), int(args[2]))
    elif command == "read":
        result = read(int(args[0]))
    elif command == "segment":
        result = segment(int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"unknown scenario {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
