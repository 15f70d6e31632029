"""Training jobs and model versions: the service flow, activation rules and rollback."""

from typing import Any

import pytest

from samapp.errors import ApplicationError
from samapp.models import JobState, ModelVersion, ModelVersionState, TrainingJob

pytestmark = pytest.mark.django_db

FAST = {"steps": 2, "images_per_step": 2, "iterations": 1}


@pytest.fixture
def decoder_variants(settings: Any) -> list[str]:
    from django.core.cache import cache

    settings.SAM_DECODER_VARIANTS = ["lowres_multi"]
    settings.SAM_DECODER_DEFAULT_VARIANT = "lowres_multi"
    cache.clear()
    return settings.SAM_DECODER_VARIANTS


def _run(project: Any, user: Any, **options: Any) -> TrainingJob:
    from samapp.services.model_versions import training_run, training_start

    job = training_start(project=project, user=user, options={**FAST, **options})
    training_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_training_creates_a_version_with_metrics_checkpoint_and_decoder(
    project, users, shapes_project, decoder_variants
) -> None:
    from django.core.files.storage import default_storage

    shapes_project(project, 6)
    job = _run(project, users["manager"], activate=False)
    assert job.state == JobState.DONE, job.error
    assert job.train_images + job.held_out_images == 6 and job.held_out_images >= 1
    assert len(job.loss_curve) == FAST["steps"]
    version = ModelVersion.objects.get(training_job=job)
    assert version.state == ModelVersionState.READY
    assert version.model_key == f"sam_tiny-p{project.pk}v1"
    for metrics in (version.metrics, version.baseline_metrics):
        assert {"miou_1", "miou_3", "miou_5", "noc_85", "noc_90"} <= set(metrics)
        assert 0.0 <= metrics["miou_1"] <= 1.0 and 1 <= metrics["noc_90"] <= metrics["clicks"]
    # Decoder + prompt encoder weights only: far smaller than the whole model.
    assert default_storage.exists(version.checkpoint_path)
    assert 0 < version.checkpoint_bytes < 1_000_000
    assert list(version.decoder_manifest["variants"]) == decoder_variants
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"  # not activated (activate=False)


def test_training_needs_accepted_annotations(project, users) -> None:
    from samapp.services.model_versions import training_start

    with pytest.raises(ApplicationError, match="accepted annotations"):
        training_start(project=project, user=users["manager"])
    with pytest.raises(ApplicationError, match="Unknown training options"):
        training_start(project=project, user=users["manager"], options={"epochs": 3})
