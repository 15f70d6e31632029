"""`manage.py sam_demo`: the demo admin and project of scripts/run.sh, idempotent."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from samapp.choices import Role
from samapp.models import Embedding, Image, Membership, Project

pytestmark = pytest.mark.django_db


def demo(**options: Any) -> str:
    out = StringIO()
    call_command("sam_demo", stdout=out, **options)
    return out.getvalue()


def test_sam_demo_twice_gives_one_admin_one_project_and_its_images(
    monkeypatch: pytest.MonkeyPatch, django_user_model: Any, client: Any
) -> None:
    monkeypatch.setenv("SAM_DEMO_PASSWORD", "first-Password-1")
    first = demo()
    second = demo()
    assert "4 image(s) added" in first
    assert "0 image(s) added, 4 already there" in second

    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.is_active
    assert django_user_model.objects.count() == 1
    project = Project.objects.get()
    assert project.name == "Demo project"
    assert Membership.objects.get(project=project).user == admin
    assert Membership.objects.get(project=project).role == Role.OWNER
    assert project.labels.count() == 3
    images = Image.objects.filter(project=project)
    assert images.count() == 4
    assert len({image.sha256 for image in images}) == 4
    assert all((image.width, image.height, image.format) == (256, 256, "PNG") for image in images)
    assert all(image.file.storage.exists(image.file.name) for image in images)
    # One embedding per image for the project's model, queued for the worker.
    assert Embedding.objects.filter(model_key=project.default_model_key).count() == 4

    assert client.login(username="admin", password="first-Password-1")
    assert client.get("/admin/samapp/project/").status_code == 200


def test_sam_demo_password_handling(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.delenv("SAM_DEMO_PASSWORD", raising=False)
    out = demo(images=1)
    # A new admin without a given password gets a random one, printed once.
    line = next(line for line in out.splitlines() if line.startswith("Admin login: admin / "))
    generated = line.split(" / ", 1)[1].split()[0]
    assert client.login(username="admin", password=generated)
    # Without a password an existing admin keeps its own; with one, it is reset to it.
    assert "Admin login" not in demo(images=1)
    assert client.login(username="admin", password=generated)
    demo(images=1, password="second-Password-2")
    assert client.login(username="admin", password="second-Password-2")
    assert Project.objects.count() == 1
    assert Image.objects.count() == 1
