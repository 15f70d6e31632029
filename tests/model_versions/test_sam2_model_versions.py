"""Fine-tuning a SAM 2.1 project's decoder (random-init Hiera-T): the same service flow as
SAM's, on the stored packed features; the version's decoder is SAM 2's graph of its weights."""

import io
from typing import Any

import pytest
import torch

from samapp.models import JobState, ModelVersion, ModelVersionState

pytestmark = pytest.mark.django_db

KEY = "sam2.1_hiera_tiny"
FAST = {"steps": 2, "images_per_step": 2, "iterations": 1, "max_objects": 4}


def test_a_sam2_project_trains_a_version_that_serves_its_own_decoder(
    project, users, shapes_project, client_for, settings, django_capture_on_commit_callbacks
) -> None:
    from django.core.cache import cache
    from django.core.files.storage import default_storage

    from samapp.ml.sam2_finetune import TRAINED_PREFIXES
    from samapp.services.embeddings import model_for_key
    from samapp.services.model_versions import model_version_activate
    from samapp.services.training_jobs import training_run, training_start

    settings.SAM_RANDOM_INIT_FALLBACK = True  # no checkpoint here: random-init weights
    settings.SAM2_DECODER_VARIANTS = ["lowres_multi"]  # the int8 probe adds nothing here
    cache.clear()
    project.default_model_key = KEY
    project.save(update_fields=["default_model_key"])
    shapes_project(project, 3)
    options = {**FAST, "activate": False}
    job = training_start(project=project, user=users["manager"], options=options)
    training_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    assert job.train_images >= 1
    assert job.held_out_images >= 1
    assert len(job.loss_curve) == FAST["steps"]

    version = ModelVersion.objects.get(training_job=job)
    assert version.state == ModelVersionState.READY
    assert version.model_key == f"{KEY}-p{project.pk}v1"
    for metrics in (version.metrics, version.baseline_metrics):
        assert {"miou_1", "miou_3", "miou_5", "noc_85", "noc_90"} <= set(metrics)
        assert 0.0 <= metrics["miou_1"] <= 1.0
    with default_storage.open(version.checkpoint_path, "rb") as handle:
        state = torch.load(io.BytesIO(handle.read()), weights_only=True)
    assert state
    assert all(k.startswith(TRAINED_PREFIXES) for k in state)
    # The version runs the base encoder with its own decoder weights.
    base, trained = model_for_key(model_key=KEY), model_for_key(model_key=version.model_key)
    assert trained.image_encoder is not base.image_encoder
    name = "sam_mask_decoder.transformer.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base.state_dict()[name], trained.state_dict()[name])
    assert torch.equal(trained.state_dict()[name].half(), state[name])
    assert version.decoder_manifest["family"] == "sam2"
    assert list(version.decoder_manifest["variants"]) == ["lowres_multi"]

    # Activated (forced: two random-init steps need not win), the browser gets the version's
    # SAM 2 decoder under the project's model key, as for SAM.
    with django_capture_on_commit_callbacks(execute=True):
        model_version_activate(version=version, force=True)
    project.refresh_from_db()
    assert project.default_model_key == version.model_key
    response: Any = client_for("annotator").get(f"/api/models/{version.model_key}/decoder/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["family"] == "sam2"
    assert body["model_key"] == version.model_key
