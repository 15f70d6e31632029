from django.urls import path, register_converter

from samapp.api.analytics import AnalyticsApi, AnalyticsCsvApi
from samapp.api.annotations import (
    AnnotationDetailApi,
    AnnotationListApi,
    ImageAnnotationListCreateApi,
)
from samapp.api.auth import LogoutApi, MeApi, TokenApi, TokenDetailApi, TokenListApi
from samapp.api.datasets import (
    DatasetImportApi,
    ExportDetailApi,
    ExportDownloadApi,
    ExportListCreateApi,
)
from samapp.api.decoders import DecoderFileApi, DecoderManifestApi
from samapp.api.embeddings import EmbeddingFileApi, ImageEmbeddingApi
from samapp.api.images import ImageAssignApi, ImageDetailApi, ImageFileApi, ImageListCreateApi
from samapp.api.invitations import (
    MyInvitationDetailApi,
    MyInvitationListApi,
    ProjectInvitationDetailApi,
    ProjectInvitationListApi,
    ProjectLeaveApi,
)
from samapp.api.job_options import JobOptionsApi
from samapp.api.labels import LabelDetailApi, LabelListCreateApi
from samapp.api.members import MemberDetailApi, MemberListCreateApi
from samapp.api.model_downloads import ModelDetailApi, ModelDownloadApi, ModelListApi
from samapp.api.model_versions import (
    ModelVersionActivateApi,
    ModelVersionDetailApi,
    ModelVersionListApi,
    ModelVersionRollbackApi,
    TrainingJobDetailApi,
    TrainingJobListCreateApi,
)
from samapp.api.projects import ProjectDetailApi, ProjectListCreateApi
from samapp.api.proposals import ProposalsApi
from samapp.api.queue import QueueDoneApi, QueueListApi, QueueNextApi
from samapp.api.reviews import AnnotationReviewApi
from samapp.api.segment import SegmentEverythingApi, SegmentJobDetailApi
from samapp.api.uploads import UploadSessionCreateApi, UploadSessionDetailApi

P = "projects/<int:project_id>/"


class ModelKeyConverter:
    """A registry key or fine-tuned version key: a slug whose parts may be joined by single
    dots (``sam2.1_hiera_tiny``); never ``.`` or ``..`` (keys name storage folders)."""

    regex = r"[-A-Za-z0-9_]+(?:\.[-A-Za-z0-9_]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelKeyConverter, "modelkey")


urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="auth-token"),
    path("auth/logout/", LogoutApi.as_view(), name="auth-logout"),
    path("auth/tokens/", TokenListApi.as_view(), name="auth-token-list"),
    path("auth/tokens/<int:token_id>/", TokenDetailApi.as_view(), name="auth-token-detail"),
    path("me/", MeApi.as_view(), name="me"),
    path("projects/", ProjectListCreateApi.as_view(), name="project-list"),
    path(P, ProjectDetailApi.as_view(), name="project-detail"),
    path(P + "members/", MemberListCreateApi.as_view(), name="member-list"),
    path(P + "members/<int:member_id>/", MemberDetailApi.as_view(), name="member-detail"),
    path(P + "invitations/", ProjectInvitationListApi.as_view(), name="project-invitation-list"),
    path(
        P + "invitations/<int:invitation_id>/",
        ProjectInvitationDetailApi.as_view(),
        name="project-invitation-detail",
    ),
    path(P + "leave/", ProjectLeaveApi.as_view(), name="project-leave"),
    path("invitations/", MyInvitationListApi.as_view(), name="invitation-list"),
    path(
        "invitations/<int:invitation_id>/",
        MyInvitationDetailApi.as_view(),
        name="invitation-detail",
    ),
    path(P + "queue/", QueueListApi.as_view(), name="queue-list"),
    path(P + "queue/next/", QueueNextApi.as_view(), name="queue-next"),
    path(P + "queue/<int:image_id>/done/", QueueDoneApi.as_view(), name="queue-done"),
    path(P + "images/assign/", ImageAssignApi.as_view(), name="image-assign"),
    path(P + "labels/", LabelListCreateApi.as_view(), name="label-list"),
    path(P + "labels/<int:label_id>/", LabelDetailApi.as_view(), name="label-detail"),
    path(P + "images/", ImageListCreateApi.as_view(), name="image-list"),
    path(P + "uploads/", UploadSessionCreateApi.as_view(), name="upload-list"),
    path(P + "uploads/<uuid:upload_id>/", UploadSessionDetailApi.as_view(), name="upload-detail"),
    path(P + "images/<int:image_id>/", ImageDetailApi.as_view(), name="image-detail"),
    path(P + "images/<int:image_id>/file/", ImageFileApi.as_view(), name="image-file"),
    path(
        P + "images/<int:image_id>/annotations/",
        ImageAnnotationListCreateApi.as_view(),
        name="image-annotation-list",
    ),
    path(P + "annotations/", AnnotationListApi.as_view(), name="annotation-list"),
    path(
        P + "annotations/<int:annotation_id>/",
        AnnotationDetailApi.as_view(),
        name="annotation-detail",
    ),
    path(
        "embeddings/<modelkey:model_key>/<str:sha256>/",
        EmbeddingFileApi.as_view(),
        name="embedding-file",
    ),
    path("models/", ModelListApi.as_view(), name="model-list"),
    path("models/<modelkey:model_key>/", ModelDetailApi.as_view(), name="model-detail"),
    path(
        "models/<modelkey:model_key>/download/", ModelDownloadApi.as_view(), name="model-download"
    ),
    path(
        "models/<modelkey:model_key>/decoder/",
        DecoderManifestApi.as_view(),
        name="decoder-manifest",
    ),
    path(
        "models/<modelkey:model_key>/decoder/<str:filename>",
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
    path(P + "exports/", ExportListCreateApi.as_view(), name="export-list"),
    path(P + "exports/<int:job_id>/", ExportDetailApi.as_view(), name="export-detail"),
    path(P + "exports/<int:job_id>/download/", ExportDownloadApi.as_view(), name="export-download"),
    path(P + "imports/", DatasetImportApi.as_view(), name="dataset-import"),
    path(P + "training-jobs/", TrainingJobListCreateApi.as_view(), name="training-job-list"),
    path(
        P + "training-jobs/<int:job_id>/",
        TrainingJobDetailApi.as_view(),
        name="training-job-detail",
    ),
    path(P + "model-versions/", ModelVersionListApi.as_view(), name="model-version-list"),
    path(
        P + "model-versions/rollback/",
        ModelVersionRollbackApi.as_view(),
        name="model-version-rollback",
    ),
    path(
        P + "model-versions/<int:version_id>/",
        ModelVersionDetailApi.as_view(),
        name="model-version-detail",
    ),
    path(
        P + "model-versions/<int:version_id>/activate/",
        ModelVersionActivateApi.as_view(),
        name="model-version-activate",
    ),
    path(P + "proposals/", ProposalsApi.as_view(), name="proposals"),
    path(P + "analytics/", AnalyticsApi.as_view(), name="analytics"),
    path(P + "analytics.csv", AnalyticsCsvApi.as_view(), name="analytics-csv"),
]
