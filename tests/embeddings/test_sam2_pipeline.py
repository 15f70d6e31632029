"""SAM 2.1 on the server: the worker's three feature maps stored packed per (content, model),
served in one response, equal to ``SAM2ImagePredictor``'s features on the same image; the
browser decoder's manifest; segment everything on the stored features."""

from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from samapp.choices import EmbeddingStatus
from samapp.ml.sam2_embedding import FEATURE_NAMES, sam2_predictor, unpack_tensors
from samapp.services import embeddings as service
from samapp.services.model_runtime import base_model

pytestmark = pytest.mark.django_db
KEY = "sam2.1_hiera_tiny"
SHAPES = {
    "image_embeddings": (256, 64, 64),
    "high_res_feats_0": (32, 256, 256),
    "high_res_feats_1": (64, 128, 128),
}


def test_worker_stores_sam2_features_served_in_one_packed_response(
    client_for, make_image, project
) -> None:
    image = make_image(project, width=40, height=30)
    with mock.patch.object(service, "_enqueue"):
        (row,) = service.embeddings_schedule(images=[image], model_key=KEY)
    assert service.embeddings_compute_batch(embedding_id=row.pk).ready == [row.pk]
    row.refresh_from_db()
    assert row.status == EmbeddingStatus.READY
    assert row.model_key == KEY
    assert row.shape == [1, 256, 64, 64]
    assert row.input_size == [1024, 1024]
    assert row.original_size == [30, 40]
    # 2 + 4 + 2 MiB of fp16 maps behind a header of a few hundred bytes (SAM's: 2 MiB).
    assert 8 * 2**20 < row.byte_size < 8 * 2**20 + 1024

    response = client_for("viewer").get(f"/api/embeddings/{KEY}/{image.sha256}/")
    assert response.status_code == 200
    assert response["X-Embedding-Layout"] == "packed"
    assert response["X-Embedding-Shape"] == "1,256,64,64"
    assert response["X-Input-Size"] == "1024,1024"
    assert len(response.content) == row.byte_size
    maps = unpack_tensors(response.content)
    assert list(maps) == list(FEATURE_NAMES)
    assert {name: array.shape for name, array in maps.items()} == SHAPES

    # The same maps as the package's predictor on the same image (fp16 rounding apart).
    with default_storage.open(image.file.name, "rb") as handle:
        pixels = np.asarray(PILImage.open(handle).convert("RGB"))
    predictor = sam2_predictor(base_model(KEY))
    predictor.set_image(pixels)
    expected = [predictor._features["image_embed"][0], *predictor._features["high_res_feats"]]
    for name, tensor in zip(FEATURE_NAMES, expected, strict=True):
        want = tensor.reshape(SHAPES[name]).float().numpy()
        np.testing.assert_allclose(maps[name], want, rtol=2e-3, atol=2e-3)

    int8 = client_for("viewer").get(f"/api/embeddings/{KEY}/{image.sha256}/?dtype=int8")
    assert int8["X-Embedding-Dtype"] == "int8"
    assert int8["X-Embedding-Layout"] == "packed"
    assert len(int8.content) < len(response.content) * 0.51
    for name, array in unpack_tensors(int8.content).items():
        scale = np.abs(maps[name]).max(axis=(1, 2), keepdims=True) / 127
        assert (np.abs(array - maps[name]) <= scale * 0.5 + 1e-3).all(), name


def test_sam_embeddings_stay_raw(client_for, make_image, project) -> None:
    image = make_image(project, width=20, height=20)
    with mock.patch.object(service, "_enqueue"):
        (row,) = service.embeddings_schedule(images=[image], model_key="sam_tiny")
    service.embeddings_compute_batch(embedding_id=row.pk)
    response: Any = client_for("viewer").get(f"/api/embeddings/sam_tiny/{image.sha256}/")
    assert response["X-Embedding-Layout"] == "raw"
    assert torch.from_numpy(np.frombuffer(response.content, "<f2").copy()).numel() > 0


def test_sam2_decoder_manifest_names_the_high_res_inputs(
    client_for, settings, django_capture_on_commit_callbacks
) -> None:
    from django.core.cache import cache

    from tests.fixtures import decoder_manifest

    cache.clear()
    client = client_for("viewer")
    manifest = decoder_manifest(client, django_capture_on_commit_callbacks, key=KEY)
    assert manifest["family"] == "sam2"
    assert manifest["img_size"] == 1024
    assert manifest["embedding_shape"] == [1, 256, 64, 64]
    assert manifest["extra_inputs"] == {
        k: list(v) for k, v in SHAPES.items() if k != FEATURE_NAMES[0]
    }
    assert manifest["default_variant"] in manifest["variants"]
    fp32 = manifest["variants"]["lowres_multi"]
    assert [i["name"] for i in fp32["inputs"]][:3] == list(FEATURE_NAMES)
    response = client.get(fp32["url"])
    assert response.status_code == 200
    assert len(response.content) == fp32["bytes"]
    # Stored with its own variant list: asked again, it is not exported again.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("samapp.ml.sam2_onnx.export_sam2_decoders", None)
        assert client.get(f"/api/models/{KEY}/decoder/").json() == manifest


def test_segment_everything_runs_sam2s_generator_on_the_stored_features(
    client_for, project, make_image, django_capture_on_commit_callbacks
) -> None:
    from samapp.choices import JobState
    from samapp.models import Annotation, SegmentJob

    project.default_model_key = KEY
    project.save(update_fields=["default_model_key"])
    image = make_image(project, width=48, height=32)
    url = f"/api/projects/{project.id}/images/{image.id}/segment-everything/"
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    with (
        mock.patch.object(service, "_encode", wraps=service._encode) as encode,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for("annotator").post(url, options, format="json")
    assert response.status_code == 202, response.json()
    job = SegmentJob.objects.get(pk=response.json()["id"])
    assert job.state == JobState.DONE, job.error
    assert encode.call_count == 1  # the features, once; the generator reused them
    proposals = list(Annotation.objects.filter(image=image))
    assert len(proposals) == job.annotation_count > 0
    assert {(a.source, a.review_state, a.model_key) for a in proposals} == {
        ("automatic", "proposed", KEY)
    }
    assert all(a.rle["size"] == [32, 48] and a.area > 0 for a in proposals)


def test_proposals_run_sam2s_generator_and_label_from_sam2_mask_embeddings(
    client_for, project, make_image, make_annotation, django_capture_on_commit_callbacks
) -> None:
    from samapp.models import Annotation

    project.default_model_key = KEY
    project.save(update_fields=["default_model_key"])
    cat = project.labels.get(name="cat")
    image = make_image(project, width=48, height=32)
    example = make_annotation(image, label=cat, box=(0, 0, 12, 8))
    body = {
        "image_ids": [image.id],
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "max_overlap": 1.0,
        "min_label_similarity": -1.0,
    }
    with (
        mock.patch.object(service, "_encode", wraps=service._encode) as encode,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for("annotator").post(
            f"/api/projects/{project.id}/proposals/", body, format="json"
        )
    assert response.status_code == 202, response.json()
    assert encode.call_count == 1  # the features, once, for the example and the generator
    proposals = list(Annotation.objects.filter(image=image).exclude(pk=example.pk))
    assert proposals
    assert {(a.source, a.review_state, a.model_key) for a in proposals} == {
        ("automatic", "proposed", KEY)
    }
    # The one example labels every proposal (no similarity floor); its similarity is a cosine.
    assert {a.label_id for a in proposals} == {cat.id}
    assert all(-1 <= a.prompts["proposal"]["label_similarity"] <= 1 for a in proposals)
