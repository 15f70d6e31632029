from django.urls import include, path

from samapp.api.annotations import (
    AnnotationDetailApi,
    AnnotationListApi,
    ImageAnnotationListCreateApi,
)
from samapp.api.auth import LogoutApi, MeApi, TokenApi, TokenDetailApi, TokenListApi
from samapp.api.images import ImageAssignApi, ImageDetailApi, ImageFileApi, ImageListCreateApi
from samapp.api.invitations import (
    MyInvitationDetailApi,
    MyInvitationListApi,
    ProjectInvitationDetailApi,
    ProjectInvitationListApi,
    ProjectLeaveApi,
)
from samapp.api.projects import (
    LabelDetailApi,
    LabelListCreateApi,
    MemberDetailApi,
    MemberListCreateApi,
    ProjectDetailApi,
    ProjectListCreateApi,
)
from samapp.api.queue import QueueDoneApi, QueueListApi, QueueNextApi
from samapp.api.uploads import UploadSessionCreateApi, UploadSessionDetailApi

P = "projects/<int:project_id>/"

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
    path("", include("samapp.api.pipeline_urls")),
    path("", include("samapp.api.dataset_urls")),
    path("", include("samapp.api.engine_urls")),
]
