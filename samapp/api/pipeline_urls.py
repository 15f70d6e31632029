from django.urls import URLPattern, URLResolver, path

from samapp.api.pipeline import (
    AnnotationReviewApi,
    DecoderFileApi,
    DecoderManifestApi,
    EmbeddingFileApi,
    ImageEmbeddingApi,
    JobOptionsApi,
    SegmentEverythingApi,
    SegmentJobDetailApi,
)
from samapp.api.registry_models import ModelDetailApi, ModelDownloadApi, ModelListApi

P = "projects/<int:project_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "embeddings/<slug:model_key>/<str:sha256>/",
        EmbeddingFileApi.as_view(),
        name="embedding-file",
    ),
    path("models/", ModelListApi.as_view(), name="model-list"),
    path("models/<slug:model_key>/", ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:model_key>/download/", ModelDownloadApi.as_view(), name="model-download"),
    path("models/<slug:model_key>/decoder/", DecoderManifestApi.as_view(), name="decoder-manifest"),
    path(
        "models/<slug:model_key>/decoder/<str:filename>",
        DecoderFileApi.as_view(),
        name="decoder-file",
    ),
    path(
        P + "images/<int:image_id>/embedding/",
        ImageEmbeddingApi.as_view(),
        name="image-embedding",
    ),
    path(
        P + "images/<int:image_id>/segment-everything/",
        SegmentEverythingApi.as_view(),
        name="segment-everything",
    ),
    path(P + "job-options/", JobOptionsApi.as_view(), name="job-options"),
    path(
        P + "segment-jobs/<int:job_id>/", SegmentJobDetailApi.as_view(), name="segment-job-detail"
    ),
    path(P + "annotations/review/", AnnotationReviewApi.as_view(), name="annotation-review"),
]
