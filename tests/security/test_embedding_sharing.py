"""Content oracle: with embeddings shared across projects by content hash, uploading bytes
that another tenant already holds answers `embedding.status: ready` at once, which tells the
uploader that someone on the server has exactly that image. Sharing is therefore a setting
(`SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS`): off in the production profile, where each project
gets its own embedding rows; on in the embedded profile (one team: each image encoded once).
"""

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from samapp.choices import EmbeddingStatus
from samapp.models import Embedding
from samapp.services import embeddings as service
from tests.conftest import png_bytes
from tests.ops.test_deploy_check import manage, production_env

SECRET_PICTURE = png_bytes(24, 16, (201, 13, 77))


def upload(client: Any, project: Any, content: bytes) -> dict[str, Any]:
    response = client.post(
        f"/api/projects/{project.id}/images/",
        {"file": [SimpleUploadedFile("x.png", content, "image/png")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["created"][0]


def victim_holds_the_picture(client_for: Any, other_project: Any) -> None:
    """The victim (`outsider`, owner of `other_project`) uploads; its worker encodes it."""
    image = upload(client_for("outsider"), other_project, SECRET_PICTURE)
    assert Embedding.objects.get(image_sha256=image["sha256"]).status == EmbeddingStatus.READY


@pytest.mark.django_db(transaction=True)
def test_with_sharing_off_an_upload_does_not_reveal_that_another_tenant_holds_the_bytes(
    client_for, project, other_project, settings, monkeypatch
) -> None:
    settings.SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS = False
    victim_holds_the_picture(client_for, other_project)
    queued: list[int] = []
    monkeypatch.setattr(service, "_enqueue", lambda ids, **kwargs: queued.extend(ids))

    attacker = client_for("owner")
    image = upload(attacker, project, SECRET_PICTURE)
    assert image["embedding"]["status"] == "pending"
    fetched = attacker.get(f"/api/embeddings/sam_tiny/{image['sha256']}/")
    assert fetched.status_code == 409
    assert fetched.json()["status"] == "pending"
    listed = attacker.get(f"/api/projects/{project.id}/images/").json()["results"]
    assert [i["embedding"]["status"] for i in listed] == ["pending"]

    # The attacker's own row is computed like any upload, by its own encoder run.
    with mock.patch.object(service, "_encode", wraps=service._encode) as encode:
        assert len(queued) == 1
        service.embeddings_compute_next()
    assert encode.call_count == 1
    rows = Embedding.objects.filter(image_sha256=image["sha256"]).order_by("id")
    assert [(r.project_id, r.status) for r in rows] == [
        (other_project.id, EmbeddingStatus.READY),
        (project.id, EmbeddingStatus.READY),
    ]
    assert attacker.get(f"/api/embeddings/sam_tiny/{image['sha256']}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_with_sharing_on_the_same_bytes_are_encoded_once_for_every_project(
    client_for, project, other_project, settings
) -> None:
    """The trade-off when sharing is on: one encoder run per content on the whole server, at
    the price of the oracle above (an upload of known bytes is `ready` at once)."""
    settings.SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS = True
    victim_holds_the_picture(client_for, other_project)
    with mock.patch.object(service, "_encode", wraps=service._encode) as encode:
        image = upload(client_for("owner"), project, SECRET_PICTURE)
    assert encode.call_count == 0
    assert image["embedding"]["status"] == "ready"
    assert Embedding.objects.get().project_id is None


def test_the_production_profile_does_not_share_embeddings_across_projects(
    tmp_path: Path,
) -> None:
    code = "from django.conf import settings as s; print(s.SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS)"
    done = manage(production_env(tmp_path), "shell", "-v", "0", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.django_db
def test_recomputing_a_projects_embeddings_leaves_another_tenants_alone(
    make_image, project, other_project, settings
) -> None:
    settings.SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS = False
    mine = make_image(project, color=(9, 9, 9))
    theirs = make_image(other_project, color=(9, 9, 9))
    assert mine.sha256 == theirs.sha256
    Embedding.objects.create(
        image_sha256=theirs.sha256,
        model_key="sam_tiny",
        project=other_project,
        status=EmbeddingStatus.READY,
    )
    assert service.embeddings_recompute(images=[mine]) == 1
    rows = Embedding.objects.order_by("id")
    assert [(r.project_id, r.queued_for_id, r.status) for r in rows] == [
        (other_project.id, None, EmbeddingStatus.READY),
        (project.id, project.id, EmbeddingStatus.PENDING),
    ]
