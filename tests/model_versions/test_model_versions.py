"""Training jobs and model versions: the service flow, activation rules and rollback."""

from typing import Any

import pytest

from samapp.choices import JobState, ModelVersionState
from samapp.errors import ApplicationError
from samapp.models import ModelVersion, TrainingJob
from tests.fixtures import decoder_manifest

pytestmark = pytest.mark.django_db

FAST = {"steps": 2, "images_per_step": 2, "iterations": 1, "encoder_mode": "frozen"}


@pytest.fixture
def decoder_variants(settings: Any) -> list[str]:
    from django.core.cache import cache

    settings.SAM_DECODER_VARIANTS = ["lowres_multi"]
    settings.SAM_DECODER_DEFAULT_VARIANT = "lowres_multi"
    cache.clear()
    return settings.SAM_DECODER_VARIANTS


def _run(project: Any, user: Any, **options: Any) -> TrainingJob:
    from samapp.services.training_jobs import training_run, training_start

    job = training_start(project=project, user=user, options={**FAST, **options})
    training_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_training_creates_a_version_with_metrics_checkpoint_and_decoder(
    project, users, shapes_project, decoder_variants, monkeypatch
) -> None:
    from django.core.files.storage import default_storage

    events: list[dict[str, Any]] = []
    monkeypatch.setattr("samapp.services.training_jobs.broadcast", lambda **e: events.append(e))
    shapes_project(project, 6)
    job = _run(project, users["manager"], activate=False)
    assert job.state == JobState.DONE, job.error
    # Progress and the loss curve over the websocket, each loss point sent once.
    progress = [e["payload"] for e in events if e["event"] == "job.progress"]
    assert all(p["kind"] == "training" and p["id"] == job.pk for p in progress)
    assert progress[-1]["state"] == "done"
    assert progress[-1]["progress"] == 1.0
    assert [x for p in progress for x in p["loss_curve"]] == job.loss_curve
    assert job.train_images + job.held_out_images == 6
    assert job.held_out_images >= 1
    assert len(job.loss_curve) == FAST["steps"]
    version = ModelVersion.objects.get(training_job=job)
    assert version.state == ModelVersionState.READY
    assert version.model_key == f"sam_tiny-p{project.pk}v1"
    for metrics in (version.metrics, version.baseline_metrics):
        assert {"miou_1", "miou_3", "miou_5", "noc_85", "noc_90"} <= set(metrics)
        assert 0.0 <= metrics["miou_1"] <= 1.0
        assert 1 <= metrics["noc_90"] <= metrics["clicks"]
    # Decoder + prompt encoder weights only: far smaller than the whole model.
    assert default_storage.exists(version.checkpoint_path)
    assert 0 < version.checkpoint_bytes < 1_000_000
    assert list(version.decoder_manifest["variants"]) == decoder_variants
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"  # not activated (activate=False)


def test_training_needs_accepted_annotations(project, users) -> None:
    from samapp.services.training_jobs import training_start

    with pytest.raises(ApplicationError, match="accepted annotations"):
        training_start(project=project, user=users["manager"])
    with pytest.raises(ApplicationError, match="Unknown training options"):
        training_start(project=project, user=users["manager"], options={"epochs": 3})


def _version(project: Any, number: int, miou: float, baseline: float, parent: str) -> Any:
    """A READY version without training: the base model's own decoder weights."""
    from samapp.ml.finetune import trained_state_dict
    from samapp.services.model_runtime import model_for_key
    from samapp.services.model_versions import version_checkpoint_store

    version = ModelVersion.objects.create(
        project=project,
        number=number,
        model_key=f"sam_tiny-p{project.pk}v{number}",
        base_model_key="sam_tiny",
        parent_model_key=parent,
        state=ModelVersionState.READY,
        metrics={"miou_1": miou},
        baseline_metrics={"miou_1": baseline},
    )
    version_checkpoint_store(version, trained_state_dict(model_for_key(model_key="sam_tiny")))
    return version


def test_activation_needs_a_better_held_out_score_unless_forced(project) -> None:
    from samapp.services.model_versions import model_version_activate

    worse = _version(project, 1, miou=0.5, baseline=0.6, parent="sam_tiny")
    with pytest.raises(ApplicationError, match="does not beat"):
        model_version_activate(version=worse)
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"
    model_version_activate(version=worse, force=True)
    project.refresh_from_db()
    assert project.default_model_key == worse.model_key


def test_activate_and_roll_back_through_a_chain_of_versions(
    project, django_capture_on_commit_callbacks
) -> None:
    from samapp.services.model_versions import model_version_activate, model_version_rollback

    v1 = _version(project, 1, miou=0.7, baseline=0.6, parent="sam_tiny")
    with django_capture_on_commit_callbacks() as callbacks:
        model_version_activate(version=v1)
    assert callbacks  # "model.activated" goes out after commit
    v2 = _version(project, 2, miou=0.8, baseline=0.7, parent=v1.model_key)
    model_version_activate(version=v2)
    states = dict(ModelVersion.objects.values_list("number", "state"))
    assert states == {1: ModelVersionState.READY, 2: ModelVersionState.ACTIVE}
    assert model_version_rollback(project=project).default_model_key == v1.model_key
    states = dict(ModelVersion.objects.values_list("number", "state"))
    assert states == {1: ModelVersionState.ACTIVE, 2: ModelVersionState.ROLLED_BACK}
    assert model_version_rollback(project=project).default_model_key == "sam_tiny"
    with pytest.raises(ApplicationError, match="nothing to roll back"):
        model_version_rollback(project=project)


def test_an_active_version_keeps_the_base_embeddings_and_serves_its_own_decoder(
    project, make_image, client_for, decoder_variants, django_capture_on_commit_callbacks
) -> None:
    from samapp.models import Embedding
    from samapp.selectors.embeddings import embedding_status_map
    from samapp.services.embeddings import embeddings_schedule
    from samapp.services.model_runtime import model_for_key
    from samapp.services.model_versions import model_version_activate

    image = make_image(project, width=32, height=24)
    (row,) = embeddings_schedule(images=[image], model_key="sam_tiny")
    version = _version(project, 1, miou=0.7, baseline=0.6, parent="sam_tiny")
    model_version_activate(version=version)
    project.refresh_from_db()
    # The image encoder is frozen: no new embedding, the same row and URL.
    assert embeddings_schedule(images=[image], model_key=project.default_model_key) == [row]
    assert Embedding.objects.count() == 1
    status = embedding_status_map(images=[image])[image.pk]
    assert status["model_key"] == "sam_tiny"
    assert model_for_key(model_key=version.model_key) is not model_for_key(model_key="sam_tiny")

    client = client_for("viewer")
    key = client.get(f"/api/projects/{project.pk}/").json()["default_model_key"]
    assert key == version.model_key
    manifest = decoder_manifest(client, django_capture_on_commit_callbacks, key)
    assert manifest["model_key"] == key
    url = manifest["variants"]["lowres_multi"]["url"]
    assert key in url
    assert client.get(url).status_code == 200
    missing = client.get(f"/api/models/sam_tiny-p{project.pk}v9/decoder/")
    assert missing.status_code == 404
    # Trained on the project's data: other users see neither the manifest nor the files.
    outsider = client_for("outsider")
    assert outsider.get(f"/api/models/{key}/decoder/").status_code == 404
    assert outsider.get(url).status_code == 404


def test_an_encoder_version_embeds_the_project_again_before_it_becomes_active(
    project,
    users,
    shapes_project,
    decoder_variants,
    monkeypatch,
    client_for,
    django_capture_on_commit_callbacks,
) -> None:
    from samapp.choices import EmbeddingStatus
    from samapp.models import Embedding
    from samapp.selectors.embeddings import embedding_status_map
    from samapp.services.model_runtime import model_version_state

    events: list[dict[str, Any]] = []
    monkeypatch.setattr("samapp.services.training_jobs.broadcast", lambda **e: events.append(e))
    # Two steps learn nothing: let the version win so that the whole path runs.
    for module in ("training_jobs", "model_versions"):
        monkeypatch.setattr(f"samapp.services.{module}.version_beats", lambda *_: True)
    images = shapes_project(project, 6)
    job = _run(
        project,
        users["manager"],
        encoder_mode="lora",
        encoder_rank=2,
        encoder_blocks=1,
        copy_paste=1,
    )
    assert job.state == JobState.DONE, job.error
    assert job.options["copy_paste"] == 1
    version = ModelVersion.objects.get(training_job=job)
    assert version.model_key == f"sam_tiny-p{project.pk}v1e"  # its own encoder
    assert version.state == ModelVersionState.ACTIVE
    assert version.metrics["encoder_mode"] == "lora"
    state = model_version_state(model_key=version.model_key)
    lora = {k for k in state if k.startswith("image_encoder.")}
    assert lora
    assert all(k.endswith((".lora_a", ".lora_b")) for k in lora)
    # Every image embedded under the version's key before activation, progress reported.
    rows = Embedding.objects.filter(model_key=version.model_key)
    assert rows.count() == len(images)
    assert set(rows.values_list("status", flat=True)) == {EmbeddingStatus.READY}
    base_rows = Embedding.objects.filter(model_key="sam_tiny").order_by("image_sha256")
    ours = {r.image_sha256: r.storage_path for r in rows}
    assert all(ours[r.image_sha256] != r.storage_path for r in base_rows)  # other features
    progress = [e["payload"]["progress"] for e in events if e["event"] == "job.progress"]
    assert progress == sorted(progress)
    assert any(0.9 < p < 1.0 for p in progress)
    project.refresh_from_db()
    assert project.default_model_key == version.model_key
    assert {s["model_key"] for s in embedding_status_map(images=images).values()} == {
        version.model_key
    }
    manifest = decoder_manifest(
        client_for("viewer"), django_capture_on_commit_callbacks, version.model_key
    )
    assert manifest["model_key"] == version.model_key


def test_encoder_mode_is_validated(project, users, shapes_project, client_for) -> None:
    from samapp.services.training_jobs import training_start

    shapes_project(project, 2)
    with pytest.raises(ApplicationError, match="encoder_mode must be one of"):
        training_start(project=project, user=users["manager"], options={"encoder_mode": "all"})
    response = client_for("manager").post(
        f"/api/projects/{project.pk}/training-jobs/",
        {"encoder_mode": "everything", "encoder_rank": 0, "copy_paste": 9},
        format="json",
    )
    assert response.status_code == 400
    assert {"encoder_mode", "encoder_rank", "copy_paste"} <= set(response.json()["errors"])
    with pytest.raises(ApplicationError, match="copy_paste must be between 0 and 8"):
        training_start(project=project, user=users["manager"], options={"copy_paste": -1})
    with pytest.raises(ApplicationError, match="copy_paste must be an integer"):
        training_start(project=project, user=users["manager"], options={"copy_paste": 1.5})


def test_the_image_encoder_adapts_on_sam_models_only(
    project, users, shapes_project, client_for
) -> None:
    """SAM 2 projects fine-tune the decoder: an encoder mode is refused before any job or
    version exists."""
    shapes_project(project, 3)
    project.default_model_key = "sam2_tiny"
    project.save(update_fields=["default_model_key"])
    response = client_for("manager").post(
        f"/api/projects/{project.pk}/training-jobs/", {"encoder_mode": "lora"}, format="json"
    )
    assert response.status_code == 400
    assert "is not a SAM model: use 'frozen'" in response.json()["detail"]
    assert not TrainingJob.objects.filter(project=project).exists()
    assert not ModelVersion.objects.filter(project=project).exists()
    # A job that got past the start (queued by an earlier release) fails when it runs.
    from samapp.services.training_jobs import training_run, training_start

    project.default_model_key = "sam_tiny"
    project.save(update_fields=["default_model_key"])
    job = training_start(project=project, user=users["manager"], options={"encoder_mode": "lora"})
    ModelVersion.objects.filter(training_job=job).update(parent_model_key="sam2_tiny")
    training_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "(sam2_tiny) is not a SAM model" in job.error
