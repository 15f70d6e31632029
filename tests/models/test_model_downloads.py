"""Registry models as a state: downloads as jobs against a local stand-in for the download
host, switching a project only to a present model, and the model of new projects."""

import io
from dataclasses import replace
from typing import Any

import pytest
from django.core.management import call_command

from samapp.choices import ModelDownloadState
from samapp.ml import registry
from samapp.models import Embedding, ModelDownload, Project
from samapp.services.model_downloads import model_download_run, model_download_start
from tests.download_host import DATA, SHA, DownloadHostHandler, download_host, refused_base_url

URL = "/api/models/"


@pytest.fixture(scope="module")
def host():
    with download_host() as url:
        yield url


@pytest.fixture
def mobile_sam(monkeypatch, settings, tmp_path, host) -> dict[str, Any]:
    """mobile_sam served by the local host (1 MB of known bytes), checkpoints in tmp_path;
    decoder exports and broadcasts recorded instead of run."""
    monkeypatch.setitem(DownloadHostHandler.files, "mobile_sam.pt", DATA)
    spec = replace(registry.MODELS["mobile_sam"], sha256=SHA, size_bytes=len(DATA))
    monkeypatch.setitem(registry.MODELS, "mobile_sam", spec)
    settings.SAM_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.SAM_DOWNLOAD_BASE_URL = f"{host}/files"
    settings.SAM_DEFAULT_MODEL = "auto"
    settings.SAM_AUTO_MODELS = ["mobile_sam"]
    seen: dict[str, Any] = {"exports": [], "models": [], "project": [], "tasks": []}
    for name in (
        "samapp.services.decoders.decoder_export",  # sam_models_prepare's
        "samapp.services.model_downloads.decoder_export",
        "samapp.services.model_downloads.decoder_export_request",
    ):
        monkeypatch.setattr(name, lambda *, model_key: seen["exports"].append(model_key) or {})
    monkeypatch.setattr(
        "samapp.services.model_downloads.broadcast_models",
        lambda *, event, payload: seen["models"].append((event, payload)),
    )
    monkeypatch.setattr(
        "samapp.services.model_downloads.broadcast",
        lambda *, project_id, event, payload: seen["project"].append((project_id, event, payload)),
    )
    return seen


def _state(client: Any, key: str) -> dict[str, Any]:
    return client.get(f"{URL}{key}/").json()


def test_list_shows_every_registry_model_with_its_state(client_for, project, mobile_sam):
    body = client_for("annotator").get(URL).json()
    states = {m["key"]: m for m in body["results"]}
    assert set(states) == set(registry.MODELS)
    assert states["sam_tiny"]["state"] == "present"
    assert "offline demo model" in states["sam_tiny"]["notice"]
    assert states["mobile_sam"]["state"] == "absent"
    assert states["mobile_sam"]["downloadable"]
    assert body["can_download"] is False
    assert client_for("manager").get(URL).json()["can_download"] is True
    assert client_for("anonymous").get(URL).status_code in (401, 403)
    assert client_for("viewer").get(f"{URL}no_such/").status_code == 404


@pytest.mark.parametrize("who", ["annotator", "reviewer", "viewer", "outsider"])
def test_only_managers_owners_and_staff_start_downloads(client_for, project, mobile_sam, who):
    response = client_for(who).post(f"{URL}mobile_sam/download/")
    assert response.status_code == 403
    assert not ModelDownload.objects.exists()


def test_download_runs_as_a_job_with_progress_then_the_model_is_ready(
    client_for, project, make_image, mobile_sam, embedding_tasks, django_capture_on_commit_callbacks
):
    make_image(project)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("manager").post(f"{URL}mobile_sam/download/")
    assert response.status_code == 202
    assert _state(client_for("viewer"), "mobile_sam")["state"] == "present"
    events = [p for e, p in mobile_sam["models"] if e == "model.download"]
    states = [p["state"] for p in events]
    assert states[0] == "downloading"
    assert "verifying" in states
    assert states[-1] == "present"
    assert events[-1]["percent"] == 100.0
    assert mobile_sam["exports"] == ["mobile_sam"]  # the decoder, before anyone needs it


def test_one_download_per_model_at_a_time(
    client_for, project, mobile_sam, monkeypatch, django_capture_on_commit_callbacks
):
    started: list[str] = []
    monkeypatch.setattr("samapp.tasks.model_download_task.delay", started.append)
    client = client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert client.post(f"{URL}mobile_sam/download/").status_code == 202
    assert ModelDownload.objects.get().state == ModelDownloadState.DOWNLOADING
    assert _state(client, "mobile_sam")["state"] == "downloading"
    assert started == ["mobile_sam"]


def test_bundled_or_present_models_are_not_downloaded(client_for, project, mobile_sam):
    response = client_for("owner").post(f"{URL}sam_tiny/download/")
    assert response.status_code == 400
    assert "ships with the server" in response.json()["detail"]


@pytest.mark.parametrize(
    ("base", "reason"),
    [("refused", "cannot be reached"), ("corrupt", "corrupt"), ("missing", "HTTP 404")],
)
def test_a_failed_download_says_why_without_a_server_command(
    client_for, project, mobile_sam, settings, monkeypatch, base, reason
):
    if base == "refused":
        settings.SAM_DOWNLOAD_BASE_URL = refused_base_url()
    elif base == "corrupt":
        monkeypatch.setitem(DownloadHostHandler.files, "mobile_sam.pt", DATA[::-1])
    else:
        monkeypatch.delitem(DownloadHostHandler.files, "mobile_sam.pt")
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    assert model_download_run(model_key="mobile_sam") == "failed"
    state = _state(client_for("annotator"), "mobile_sam")
    assert state["state"] == "failed"
    assert reason in state["error"]
    assert "manage.py" not in state["error"]
    assert mobile_sam["exports"] == []


def test_a_download_whose_worker_died_shows_failed_and_restarts(
    client_for, project, mobile_sam, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    started: list[str] = []
    monkeypatch.setattr("samapp.tasks.model_download_task.delay", started.append)
    ModelDownload.objects.create(
        model_key="mobile_sam", state=ModelDownloadState.DOWNLOADING, bytes_done=10
    )
    ModelDownload.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert _state(client_for("viewer"), "mobile_sam")["state"] == "failed"
    model_download_start(model_key="mobile_sam", user=None)
    assert ModelDownload.objects.get().bytes_done == 0


def test_switching_to_an_absent_model_is_refused_and_keeps_the_current_one(
    client_for, project, mobile_sam
):
    response = client_for("owner").patch(
        f"/api/projects/{project.pk}/", {"default_model_key": "sam_vit_b"}, format="json"
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "Models page" in detail
    assert "manage.py" not in detail
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"


def test_a_switch_during_the_download_waits_for_it(
    client_for, project, make_image, mobile_sam, embedding_tasks, django_capture_on_commit_callbacks
):
    image = make_image(project)
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    response = client_for("manager").patch(
        f"/api/projects/{project.pk}/", {"default_model_key": "mobile_sam"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["default_model_key"] == "sam_tiny"
    assert response.json()["pending_model_key"] == "mobile_sam"
    with django_capture_on_commit_callbacks(execute=True):
        assert model_download_run(model_key="mobile_sam") == "present"
    project.refresh_from_db()
    assert project.default_model_key == "mobile_sam"
    assert Embedding.objects.filter(image_sha256=image.sha256, model_key="mobile_sam").exists()
    assert (project.pk, "model.activated", {"model_key": "mobile_sam", "model_version": None}) in (
        mobile_sam["project"]
    )
    body = client_for("viewer").get(f"/api/projects/{project.pk}/").json()
    assert body["pending_model_key"] is None


def test_switching_to_a_present_model_is_live(
    client_for, project, make_image, mobile_sam, embedding_tasks, django_capture_on_commit_callbacks
):
    image = make_image(project)
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    model_download_run(model_key="mobile_sam")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("owner").patch(
            f"/api/projects/{project.pk}/", {"default_model_key": "mobile_sam"}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["default_model_key"] == "mobile_sam"
    assert Embedding.objects.filter(image_sha256=image.sha256, model_key="mobile_sam").exists()
    assert mobile_sam["project"][-1][1] == "model.activated"


def test_new_projects_follow_sam_default_model(users, mobile_sam, settings):
    from samapp.services.projects import project_create

    def new() -> Project:
        return project_create(name="p", created_by=users["owner"])

    assert new().default_model_key == "sam_tiny"  # auto, MobileSAM absent: the demo model
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    waiting = new()
    assert waiting.default_model_key == "sam_tiny"
    assert ModelDownload.objects.get().switch_projects == [waiting.pk]
    model_download_run(model_key="mobile_sam")
    waiting.refresh_from_db()
    assert waiting.default_model_key == "mobile_sam"
    assert new().default_model_key == "mobile_sam"  # auto, MobileSAM present
    settings.SAM_DEFAULT_MODEL = "sam_tiny"
    assert new().default_model_key == "sam_tiny"


def test_prepare_downloads_the_auto_model_with_a_progress_bar(db, mobile_sam):
    out, err = io.StringIO(), io.StringIO()
    call_command("sam_models_prepare", "--no-export", stdout=out, stderr=err)
    assert "mobile_sam downloaded" in out.getvalue()
    assert "New projects use mobile_sam." in out.getvalue()
    assert "100%" in err.getvalue()


def test_prepare_offline_falls_back_to_the_demo_model(db, mobile_sam, settings):
    settings.SAM_DOWNLOAD_BASE_URL = refused_base_url()
    out = io.StringIO()
    call_command("sam_models_prepare", "--no-export", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "falling back to the demo model" in text
    assert "New projects use sam_tiny." in text
    assert "offline demo model" in text
    assert ModelDownload.objects.get().state == ModelDownloadState.FAILED


def test_prepare_exports_the_decoder_of_every_present_model(db, mobile_sam):
    call_command("sam_models_prepare", "--no-download", stdout=io.StringIO())
    assert mobile_sam["exports"] == ["sam_tiny", "sam2_tiny"]  # the bundled ones


def _pending_events(seen: dict[str, Any], project: Project) -> list[dict[str, Any]]:
    return [p for pk, e, p in seen["project"] if pk == project.pk and e == "model.pending"]


def test_a_queued_switch_is_announced_and_a_failed_download_ends_it(
    client_for, project, mobile_sam, monkeypatch, django_capture_on_commit_callbacks
):
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        client_for("owner").patch(
            f"/api/projects/{project.pk}/", {"default_model_key": "mobile_sam"}, format="json"
        )
    assert _pending_events(mobile_sam, project) == [
        {"model_key": "mobile_sam", "current_model_key": "sam_tiny", "failure": ""}
    ]
    monkeypatch.setitem(DownloadHostHandler.files, "mobile_sam.pt", DATA[::-1])
    with django_capture_on_commit_callbacks(execute=True):
        assert model_download_run(model_key="mobile_sam") == "failed"
    ended = _pending_events(mobile_sam, project)[-1]
    assert ended["model_key"] is None
    assert ended["current_model_key"] == "sam_tiny"
    # The reason travels with the project's event: it may reach a workspace first.
    assert ended["failure"] == ModelDownload.objects.get().error
    assert "sha256" in ended["failure"]
    body = client_for("annotator").get(f"/api/projects/{project.pk}/").json()
    assert body["default_model_key"] == "sam_tiny"
    assert body["pending_model_key"] is None


def test_a_later_switch_replaces_a_queued_one(
    client_for, project, mobile_sam, embedding_tasks, django_capture_on_commit_callbacks
):
    model_download_start(model_key="mobile_sam", user=None, enqueue=False)
    owner = client_for("owner")
    url = f"/api/projects/{project.pk}/"
    owner.patch(url, {"default_model_key": "mobile_sam"}, format="json")
    # An absent model is refused and leaves the queued switch as it was.
    assert owner.patch(url, {"default_model_key": "sam_vit_b"}, format="json").status_code == 409
    assert owner.get(url).json()["pending_model_key"] == "mobile_sam"
    # Asking for the model in use drops the queued switch: the download no longer moves it.
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.patch(url, {"default_model_key": "sam_tiny"}, format="json")
    assert response.status_code == 200
    assert response.json()["pending_model_key"] is None
    assert _pending_events(mobile_sam, project)[-1]["model_key"] is None
    assert ModelDownload.objects.get().switch_projects == []
    assert model_download_run(model_key="mobile_sam") == "present"
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"
