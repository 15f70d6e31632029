from django.urls import URLPattern, URLResolver, path

from samapp.api.datasets import (
    DatasetImportApi,
    ExportDetailApi,
    ExportDownloadApi,
    ExportListCreateApi,
)

P = "projects/<int:project_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(P + "exports/", ExportListCreateApi.as_view(), name="export-list"),
    path(P + "exports/<int:job_id>/", ExportDetailApi.as_view(), name="export-detail"),
    path(P + "exports/<int:job_id>/download/", ExportDownloadApi.as_view(), name="export-download"),
    path(P + "imports/", DatasetImportApi.as_view(), name="dataset-import"),
]
