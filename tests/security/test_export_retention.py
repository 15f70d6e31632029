"""Exports are full copies of a project's images: they expire, can be deleted, and each user
may start only so many (a viewer once ran unlimited exports that nobody could delete)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from samapp.choices import JobState
from samapp.models import ExportJob
from tests.conftest import media_files

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle_counts() -> None:
    cache.clear()


@pytest.fixture
def exported(
    client_for: Any, project: Any, make_image: Any, django_capture_on_commit_callbacks: Any
) -> Any:
    """``exported(who)``: a finished COCO export of `project` started by `who`."""
    make_image(project, width=16, height=12)

    def make(who: str) -> ExportJob:
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(who).post(url(project), {"format": "coco"}, format="json")
        assert response.status_code == 202, response.content
        job = ExportJob.objects.get(pk=response.json()["id"])
        assert job.state == JobState.DONE
        assert job.result_file
        return job

    return make


def url(project: Any, job: ExportJob | None = None) -> str:
    base = f"/api/projects/{project.id}/exports/"
    return base if job is None else f"{base}{job.id}/"


def archives(media_root: Path) -> list[str]:
    return [path.name for path in media_files(media_root) if path.parent.name == "exports"]


def age(job: ExportJob, hours: float) -> None:
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def test_exports_expire_after_their_ttl_with_their_archive(
    exported, client_for, project, media_root, settings, django_capture_on_commit_callbacks
) -> None:
    settings.SAM_EXPORT_TTL_HOURS = 24
    old, swept, fresh = exported("viewer"), exported("viewer"), exported("viewer")
    assert len(archives(media_root)) == 3
    body = client_for("viewer").get(url(project, fresh)).json()
    assert body["expires_at"].startswith(str((fresh.created_at + timedelta(hours=24)).date()))

    age(old, 25)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sam_exports_expire")  # the periodic sweep (cron, or Celery beat)
    assert not ExportJob.objects.filter(pk=old.pk).exists()
    assert old.result_file.name.rsplit("/", 1)[-1] not in archives(media_root)

    age(swept, 25)  # and the sweep on request, before any export of the project is read
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("viewer").get(url(project, swept)).status_code == 404
    listing = client_for("viewer").get(url(project)).json()["results"]
    assert [job["id"] for job in listing] == [fresh.id]
    assert archives(media_root) == [fresh.result_file.name.rsplit("/", 1)[-1]]


def test_its_creator_and_managers_may_delete_an_export_and_its_file(
    exported, client_for, project, media_root, django_capture_on_commit_callbacks
) -> None:
    mine, theirs = exported("viewer"), exported("annotator")
    assert client_for("viewer").delete(url(project, theirs)).status_code == 403
    assert client_for("outsider").delete(url(project, theirs)).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("viewer").delete(url(project, mine)).status_code == 204
        assert client_for("manager").delete(url(project, theirs)).status_code == 204
    assert not ExportJob.objects.exists()
    assert archives(media_root) == []


def test_an_export_deleted_while_it_runs_leaves_no_file(project, make_image, media_root) -> None:
    from samapp.services.datasets import exports

    make_image(project, width=16, height=12)
    job = exports.export_job_create(project=project, created_by=None, format="coco")
    write = exports.WRITERS["coco"]

    def write_then_lose_the_row(run: Any) -> None:
        write(run)
        ExportJob.objects.filter(pk=job.pk).delete()

    exports.WRITERS["coco"] = write_then_lose_the_row
    try:
        exports.export_job_run(job_id=job.pk)
    finally:
        exports.WRITERS["coco"] = write
    assert archives(media_root) == []


def test_export_creation_is_rate_limited_per_user(
    client_for, project, settings, monkeypatch
) -> None:
    monkeypatch.setattr("samapp.tasks.export_run_task.delay", lambda *args: None)
    settings.SAM_EXPORT_RATE = "3/hour"
    settings.SAM_MAX_ACTIVE_JOBS_PER_USER = settings.SAM_MAX_ACTIVE_JOBS_PER_PROJECT = 100
    viewer = client_for("viewer")
    codes = [
        viewer.post(url(project), {"format": "coco"}, format="json").status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    refused = viewer.post(url(project), {"format": "coco"}, format="json")
    assert refused.status_code == 429
    assert "throttled" in refused.json()["detail"]
    assert viewer.get(url(project)).status_code == 200  # reading is not limited
    other = client_for("annotator").post(url(project), {"format": "coco"}, format="json")
    assert other.status_code == 202
    assert ExportJob.objects.count() == 4
