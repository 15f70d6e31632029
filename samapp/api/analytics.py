"""Annotation analytics, as JSON and CSV (per-person numbers: needs MANAGE)."""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.permissions import ProjectScopedMixin
from samapp.roles import Capability
from samapp.selectors.analytics import annotation_analytics
from samapp.services.analytics import analytics_csv_export


class AnalyticsApi(ProjectScopedMixin, APIView):
    capabilities = {"GET": Capability.MANAGE}

    @extend_schema(responses=dict)
    def get(self, request: Request, project_id: int) -> Response:
        return Response({"results": annotation_analytics(project=self.project)})


class AnalyticsCsvApi(ProjectScopedMixin, APIView):
    capabilities = {"GET": Capability.MANAGE}

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request: Request, project_id: int) -> HttpResponse:
        response = HttpResponse(
            analytics_csv_export(project=self.project), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="project-{self.project.pk}-analytics.csv"'
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response
