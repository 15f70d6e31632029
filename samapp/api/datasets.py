"""Dataset exports (Celery jobs with a download) and imports (zip with COCO or YOLO labels).

Permissions: every project member may export (it reveals nothing they cannot already
read); importing creates images and annotations, so it needs MANAGE (as image upload does).
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, UserRateThrottle
from rest_framework.views import APIView

from samapp.api.pagination import StandardPagination
from samapp.api.parsers import BoundedJSONParser
from samapp.api.permissions import ProjectScopedMixin
from samapp.choices import ExportFormat, JobState
from samapp.errors import ApplicationError
from samapp.models import ExportJob
from samapp.roles import Capability, role_can
from samapp.selectors.datasets import export_job_list
from samapp.services.datasets.exports import (
    export_expiry,
    export_job_create,
    export_job_delete,
    export_jobs_expire,
)
from samapp.services.datasets.importers import FORMATS, dataset_import


class ExportCreateThrottle(UserRateThrottle):
    """Exports each user may start (`SAM_EXPORT_RATE`, read at each request)."""

    scope = "exports"

    def get_rate(self) -> str:
        return str(settings.SAM_EXPORT_RATE)


class ExportJobOutput(serializers.ModelSerializer[ExportJob]):
    download_url = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = (
            "id",
            "format",
            "options",
            "state",
            "progress",
            "error",
            "created_by",
            "created_at",
            "updated_at",
            "expires_at",
            "download_url",
        )

    def get_expires_at(self, job: ExportJob) -> datetime:
        return export_expiry(job)

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.state != JobState.DONE or not job.result_file:
            return None
        return reverse("export-download", kwargs={"project_id": job.project_id, "job_id": job.id})


class ExpiringExportsMixin(ProjectScopedMixin):
    """Exports past their time are swept away before any request reads the project's."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        export_jobs_expire(project=self.project)


class ExportListCreateApi(ExpiringExportsMixin, APIView):
    capabilities = {"POST": Capability.VIEW}
    parser_classes = [BoundedJSONParser]

    def get_throttles(self) -> list[BaseThrottle]:
        return [ExportCreateThrottle()] if self.request.method == "POST" else []

    class InputSerializer(serializers.Serializer[Any]):
        format = serializers.ChoiceField(choices=ExportFormat.choices)
        options = serializers.JSONField(required=False, default=dict)

    @extend_schema(responses=ExportJobOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(export_job_list(project=self.project), request, self)
        return paginator.get_paginated_response(ExportJobOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={202: ExportJobOutput})
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = export_job_create(
            project=self.project,
            created_by=self.user,
            format=serializer.validated_data["format"],
            options=serializer.validated_data.get("options") or {},
        )
        return Response(ExportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(ExpiringExportsMixin, APIView):
    @extend_schema(responses=ExportJobOutput)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = get_object_or_404(export_job_list(project=self.project), pk=job_id)
        return Response(ExportJobOutput(job).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, job_id: int) -> Response:
        job = get_object_or_404(export_job_list(project=self.project), pk=job_id)
        export_job_delete(
            job=job,
            user=self.user,
            may_manage=role_can(self.membership.role, Capability.MANAGE),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportDownloadApi(ExpiringExportsMixin, APIView):
    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request: Request, project_id: int, job_id: int) -> FileResponse | Response:
        job = get_object_or_404(export_job_list(project=self.project), pk=job_id)
        if job.state != JobState.DONE or not job.result_file:
            return Response(
                {"detail": f"This export is not ready (state: {job.state})."},
                status=status.HTTP_409_CONFLICT,
            )
        response = FileResponse(
            job.result_file.open("rb"),
            as_attachment=True,
            filename=(job.result_file.name or "export.zip").rsplit("/", 1)[-1],
            content_type="application/zip",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-cache"
        return response


class DatasetImportApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "format": {"type": "string", "enum": list(FORMATS)},
                },
                "required": ["file"],
            }
        },
        responses={201: dict},
    )
    def post(self, request: Request, project_id: int) -> Response:
        files = request.FILES.getlist("file")
        if len(files) != 1:
            raise ApplicationError("Send exactly one zip archive in the 'file' field.")
        upload = files[0]
        result = dataset_import(
            project=self.project,
            user=self.user,
            name=upload.name or "upload.zip",
            stream=upload,
            format=request.POST.get("format") or None,
        )
        return Response(
            {
                "format": result.format,
                "images_created": result.images_created,
                "images_existing": result.images_existing,
                "annotations_created": result.annotations_created,
                "labels_created": result.labels_created,
                "ignored": result.ignored,
            },
            status=status.HTTP_201_CREATED,
        )
