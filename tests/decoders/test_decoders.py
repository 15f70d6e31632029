"""Browser decoder manifest and files: exported once per model into storage, served immutable."""

import hashlib

import pytest

from samapp.ml.tiny import SAM_TINY_CONFIG
from tests.fixtures import decoder_manifest

C, S, IMG = (
    SAM_TINY_CONFIG.prompt_embed_dim,
    SAM_TINY_CONFIG.image_embedding_size,
    SAM_TINY_CONFIG.img_size,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def variants(settings) -> list[str]:
    settings.SAM_DECODER_VARIANTS = ["lowres_multi", "official_single"]
    settings.SAM_DECODER_DEFAULT_VARIANT = "lowres_multi"
    from django.core.cache import cache

    cache.clear()
    return settings.SAM_DECODER_VARIANTS


def test_manifest_exports_once_and_serves_files(
    client_for, variants, django_capture_on_commit_callbacks
) -> None:
    client = client_for("viewer")
    manifest = decoder_manifest(client, django_capture_on_commit_callbacks)
    assert manifest["model_key"] == "sam_tiny"
    assert manifest["img_size"] == IMG
    assert manifest["embedding_shape"] == [1, C, S, S]
    assert manifest["mask_input_size"] == [4 * S, 4 * S]
    assert manifest["default_variant"] == "lowres_multi"
    assert sorted(manifest["variants"]) == sorted(variants)
    low = manifest["variants"]["lowres_multi"]
    assert [i["name"] for i in low["inputs"]][:2] == ["image_embeddings", "point_coords"]
    assert [o["name"] for o in low["outputs"]] == ["iou_predictions", "low_res_masks"]
    response = client.get(low["url"])
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == low["sha256"]
    assert len(response.content) == low["bytes"]
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["ETag"] == f'"{low["sha256"]}"'
    assert client.get(low["url"], HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert client.get("/api/models/sam_tiny/decoder/evil.onnx").status_code == 404
    assert client.get("/api/models/sam_tiny/decoder/../manifest.json").status_code == 404
    assert client_for("anonymous").get(low["url"]).status_code in (401, 403)
    # Cached: a second manifest request exports nothing.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("samapp.ml.onnx_export.export_decoders", None)
        assert client.get("/api/models/sam_tiny/decoder/").json() == manifest


def test_expected_waits_are_states_not_errors(client_for, variants, settings, monkeypatch) -> None:
    from samapp.choices import ModelDownloadState
    from samapp.models import ModelDownload

    client = client_for("viewer")
    queued: list[str] = []
    monkeypatch.setattr("samapp.tasks.decoder_export_task.delay", queued.append)
    exporting = client.get("/api/models/sam_tiny/decoder/")  # export queued, not run yet
    assert exporting.status_code == 202
    assert exporting.json()["status"] == "exporting"
    settings.SAM_CHECKPOINT_DIR = "/nonexistent"
    ModelDownload.objects.create(model_key="mobile_sam", state=ModelDownloadState.DOWNLOADING)
    downloading = client.get("/api/models/mobile_sam/decoder/")
    assert downloading.status_code == 202
    assert downloading.json()["status"] == "downloading"


def test_an_export_from_other_weights_is_made_again(
    client_for, variants, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    import torch

    from samapp.ml.tiny import SAM_TINY_CHECKPOINT
    from samapp.services.decoders import decoder_manifest_get

    client = client_for("viewer")
    first = decoder_manifest(client, django_capture_on_commit_callbacks)
    settings.SAM_CHECKPOINT_DIR = tmp_path  # a checkpoint here wins over the bundled one
    (tmp_path / "sam_tiny.pt").write_bytes(SAM_TINY_CHECKPOINT.read_bytes())
    assert decoder_manifest(client, django_capture_on_commit_callbacks) == first  # same bytes
    state = torch.load(SAM_TINY_CHECKPOINT, weights_only=True)
    state["mask_decoder.iou_prediction_head.layers.0.bias"].add_(1.0)
    torch.save(state, tmp_path / "new.pt")
    (tmp_path / "new.pt").replace(tmp_path / "sam_tiny.pt")  # as a download lands
    assert decoder_manifest_get(model_key="sam_tiny") is None  # the next request exports again


def test_graphs_stored_before_the_offline_optimisation_are_exported_again(
    client_for, variants, django_capture_on_commit_callbacks
) -> None:
    import json

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from samapp.services.decoders import decoder_file_path, decoder_manifest_get

    client = client_for("viewer")
    assert decoder_manifest(client, django_capture_on_commit_callbacks)["offline_optimization"] == (
        "basic"
    )
    path = decoder_file_path(model_key="sam_tiny", filename="manifest.json")
    with default_storage.open(path, "rb") as handle:
        stored = json.loads(handle.read())
    del stored["offline_optimization"]
    default_storage.delete(path)
    default_storage.save(path, ContentFile(json.dumps(stored).encode()))
    assert decoder_manifest_get(model_key="sam_tiny") is None  # the next request exports again


def test_unknown_or_missing_models_get_404_with_a_message(client_for, settings, variants) -> None:
    client = client_for("viewer")
    unknown = client.get("/api/models/nope/decoder/")
    assert unknown.status_code == 404
    assert "Unknown model" in unknown.json()["detail"]
    settings.SAM_RANDOM_INIT_FALLBACK = False
    settings.SAM_CHECKPOINT_DIR = "/nonexistent"
    missing = client.get("/api/models/sam_vit_h/decoder/")
    assert missing.status_code == 404
    assert missing.json()["status"] == "absent"
    assert "Models page" in missing.json()["detail"]
    assert "manage.py" not in missing.json()["detail"]  # no server command for annotators


def test_fast_variant_serves_its_prepare_graph(
    client_for, settings, django_capture_on_commit_callbacks
) -> None:
    settings.SAM_DECODER_VARIANTS = ["fast_multi"]
    settings.SAM_DECODER_DEFAULT_VARIANT = "fast_multi"
    from django.core.cache import cache

    cache.clear()
    client = client_for("viewer")
    manifest = decoder_manifest(client, django_capture_on_commit_callbacks)
    assert manifest["default_variant"] == "fast_multi"
    # Clicks that refine a mask need the single-graph variant: exported with it.
    assert sorted(manifest["variants"]) == ["fast_multi", "lowres_multi"]
    fast = manifest["variants"]["fast_multi"]
    assert fast["mask_input_variant"] == "lowres_multi"
    assert [i["name"] for i in fast["inputs"]] == [
        "src", "k0", "v0", "q0", "point_coords", "point_labels"
    ]  # fmt: skip
    assert [o["name"] for o in fast["prepare"]["outputs"]] == ["src", "k0", "v0", "q0"]
    for entry in (fast, fast["prepare"]):
        served = client.get(entry["url"])
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == entry["sha256"]


def test_rejected_lossy_variant_is_not_exported_again(
    client_for, settings, django_capture_on_commit_callbacks
) -> None:
    """sam_tiny's int8 fast variant fails its parity probe: the manifest serves the exact one,
    and the rejection counts as exported (no export on every request)."""
    settings.SAM_DECODER_VARIANTS = ["fast_multi_int8up_tanh", "fast_multi"]
    settings.SAM_DECODER_DEFAULT_VARIANT = "fast_multi_int8up_tanh"
    from django.core.cache import cache

    from samapp.ml.tiny import SAM_TINY_CHECKPOINT

    if not SAM_TINY_CHECKPOINT.is_file():
        pytest.skip("the rejection is measured on the trained sam_tiny")
    cache.clear()
    client = client_for("viewer")
    manifest = decoder_manifest(client, django_capture_on_commit_callbacks)
    assert sorted(manifest["variants"]) == ["fast_multi", "lowres_multi"]
    assert manifest["default_variant"] == "fast_multi"  # the configured one was rejected
    rejected = manifest["rejected"]["fast_multi_int8up_tanh"]
    assert rejected["parity"]["mean_iou"] < 0.98
    assert "probe mask IoU" in rejected["reason"]
    cache.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("samapp.ml.onnx_export.export_decoders", None)
        again = client.get("/api/models/sam_tiny/decoder/")
    assert again.status_code == 200
    assert again.json() == manifest
