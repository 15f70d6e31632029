"""Create the demo admin and a demo project with a few generated images; idempotent.

The admin's password comes from ``--password`` or the ``SAM_DEMO_PASSWORD`` environment
variable and is (re)set on every run; without either, a new admin gets a random password
that is printed once, and an existing admin keeps the one it has.
"""

import io
import os
import secrets
from typing import Any, BinaryIO

import PIL.Image
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from samapp.ml.synthetic import generate_scene
from samapp.models import Project
from samapp.services.projects import project_create
from samapp.services.uploads import images_create, uploads_check

DEMO_PROJECT_NAME = "Demo project"
DEMO_SEED = 20_240_601  # a stream of scenes the tiny model was not trained on
DEMO_LABELS = (("shape", "#e6194b"), ("background object", "#3cb44b"), ("other", "#4363d8"))


def demo_png(index: int) -> bytes:
    """The PNG bytes of demo scene ``index`` (deterministic)."""
    scene = generate_scene(DEMO_SEED, index)
    buffer = io.BytesIO()
    PIL.Image.fromarray(scene.image).save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo admin and the demo project with its images."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password",
            default=None,
            help="admin password (default: $SAM_DEMO_PASSWORD, else random for a new admin)",
        )
        parser.add_argument("--images", type=int, default=4, help="number of demo images")

    def handle(self, *args: Any, **options: Any) -> None:
        from backend.celery import ensure_broker_spool

        ensure_broker_spool()  # uploads queue embedding tasks on the local broker
        username: str = options["username"]
        password: str | None = options["password"] or os.environ.get("SAM_DEMO_PASSWORD")
        generated = None

        user_model = get_user_model()
        admin = user_model.objects.filter(username=username).first()
        if admin is None:
            if not password:
                password = generated = secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser(
                username=username, email=f"{username}@localhost", password=password
            )
            self.stdout.write(f"Created superuser {username!r}.")
        else:
            changed = not (admin.is_superuser and admin.is_staff and admin.is_active)
            admin.is_superuser = admin.is_staff = admin.is_active = True
            if password:
                admin.set_password(password)
                changed = True
            if changed:
                admin.save()
            self.stdout.write(f"Superuser {username!r} exists.")

        project = (
            Project.objects.filter(name=DEMO_PROJECT_NAME, created_by=admin).order_by("id").first()
        )
        if project is None:
            project = project_create(
                name=DEMO_PROJECT_NAME,
                created_by=admin,
                description="Generated shapes scenes to try click-to-segment on.",
                labels=DEMO_LABELS,
            )
            self.stdout.write(f"Created project {project.name!r} (id {project.pk}).")

        files: list[tuple[str, BinaryIO]] = [
            (f"demo-{i + 1:02d}.png", io.BytesIO(demo_png(i))) for i in range(options["images"])
        ]
        checked = uploads_check(files=files)
        result = images_create(project=project, uploaded_by=admin, images=checked)
        self.stdout.write(
            f"Project {project.name!r} (id {project.pk}): {len(result.created)} image(s) added, "
            f"{len(result.duplicates)} already there."
        )
        if generated:
            self.stdout.write(f"Admin login: {username} / {generated} (generated; shown once)")
