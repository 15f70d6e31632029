from django.urls import URLPattern, URLResolver, path

from samapp.api.engine import (
    AnalyticsApi,
    AnalyticsCsvApi,
    ModelVersionActivateApi,
    ModelVersionDetailApi,
    ModelVersionListApi,
    ModelVersionRollbackApi,
    ProposalsApi,
    TrainingJobDetailApi,
    TrainingJobListCreateApi,
)

P = "projects/<int:project_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
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
