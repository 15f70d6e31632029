"""Fixtures of the security matrix: the websocket helpers of tests/fixtures.py, and a world with
two projects, where ``attacker`` (owner of ``project``) must see nothing of ``other_project``.
"""

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fixtures import (
    connect,
    in_memory_layer,
    pg_database_url,
    sam_random_fallback,
    token_for,
)

__all__ = [
    "connect",
    "foreign",
    "in_memory_layer",
    "pg_database_url",
    "sam_random_fallback",
    "table_snapshot",
    "token_for",
]

SECRET = "Zebra-Secret-7f3a"  # appears only in the foreign project's rows


def table_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every samapp model (API tokens included, less the ``last_used`` that the
    requests themselves move), plus users."""
    from django.apps import apps

    models = [*apps.get_app_config("samapp").get_models()]
    models += [apps.get_model("auth", "User")]
    snapshot = {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in models
        if not model._meta.abstract
    }
    for row in snapshot["samapp.ApiToken"]:
        del row["last_used"]
    return snapshot


@pytest.fixture
def foreign(
    users: dict[str, Any],
    project: Any,
    other_project: Any,
    make_image: Callable[..., Any],
    make_annotation: Callable[..., Any],
    django_user_model: Any,
) -> SimpleNamespace:
    """One object of every kind in ``other_project`` (the victim's), none visible to the
    members of ``project``."""
    from samapp.choices import ModelVersionState
    from samapp.models import (
        Embedding,
        ExportJob,
        Invitation,
        Membership,
        ModelVersion,
        SegmentJob,
        TrainingJob,
        UploadSession,
    )
    from samapp.services.api_tokens import api_token_create
    from samapp.services.projects import member_add

    victim = other_project
    victim.name = f"{SECRET} project"
    victim.save(update_fields=["name"])
    bob = django_user_model.objects.create_user(username="bob", password="x")
    member_add(project=victim, user=bob, role="annotator")
    label = victim.labels.get()
    label.name = f"{SECRET} label"
    label.save(update_fields=["name"])
    image = make_image(victim, width=8, height=6, color=(1, 2, 250), name=f"{SECRET}.png")
    annotation = make_annotation(image, label=label, author=bob)
    training = TrainingJob.objects.create(project=victim, base_model_key="sam_tiny")
    version = ModelVersion.objects.create(
        project=victim,
        number=1,
        model_key=f"sam_tiny-p{victim.id}v1",
        base_model_key="sam_tiny",
        parent_model_key="sam_tiny",
        state=ModelVersionState.READY,
        training_job=training,
    )
    return SimpleNamespace(
        project=victim,
        image=image,
        label=label,
        annotation=annotation,
        member=Membership.objects.get(project=victim, user=bob),
        invitation=Invitation.objects.create(
            project=victim, identifier=f"{SECRET}-invitee", invitee=bob, role="viewer"
        ),
        token=api_token_create(user=bob)[0],
        upload=UploadSession.objects.create(
            id=uuid.uuid4(),
            project=victim,
            created_by=bob,
            name=f"{SECRET}.png",
            size=10,
            chunk_size=8,
        ),
        export=ExportJob.objects.create(project=victim),
        segment_job=SegmentJob.objects.create(project=victim, image=image, model_key="sam_tiny"),
        training_job=training,
        version=version,
        embedding=Embedding.objects.create(
            image_sha256=image.sha256, model_key="sam_tiny", status="ready"
        ),
    )
