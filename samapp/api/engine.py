"""Data engine: fine-tuning jobs, model versions (evaluation, activation, rollback),
semi-automatic proposals and annotation analytics.

Permissions: members read jobs and versions; starting a training job, activating and
rolling back need MANAGE; proposals need ANNOTATE; analytics (per-person numbers) need
MANAGE."""

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField, job_option_field
from samapp.api.permissions import ProjectScopedMixin
from samapp.models import ModelVersion, TrainingJob
from samapp.roles import Capability
from samapp.selectors.analytics import annotation_analytics
from samapp.services.analytics import analytics_csv_export
from samapp.services.model_versions import (
    model_version_activate,
    model_version_payload,
    model_version_rollback,
    training_job_payload,
    training_start,
)
from samapp.services.proposals import proposals_start

MAX_LIST = 100


class TrainingJobListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    class InputSerializer(serializers.Serializer[Any]):
        steps = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
        images_per_step = serializers.IntegerField(min_value=1, max_value=64, required=False)
        max_objects = serializers.IntegerField(min_value=1, max_value=256, required=False)
        lr = serializers.FloatField(min_value=1e-7, max_value=1e-1, required=False)
        iterations = serializers.IntegerField(min_value=1, max_value=11, required=False)
        train_prompt_encoder = serializers.BooleanField(required=False)
        held_out_percent = serializers.IntegerField(min_value=1, max_value=50, required=False)
        seed = serializers.IntegerField(min_value=0, required=False)
        activate = serializers.BooleanField(required=False)

    @extend_schema(operation_id="projects_training_jobs_list", responses=dict)
    def get(self, request: Request, project_id: int) -> Response:
        jobs = TrainingJob.objects.filter(project=self.project)[:MAX_LIST]
        return Response({"results": [training_job_payload(job) for job in jobs]})

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = training_start(
            project=self.project,
            user=self.user,
            options=dict(serializer.validated_data),
        )
        job.refresh_from_db()
        return Response(training_job_payload(job), status=status.HTTP_202_ACCEPTED)


class TrainingJobDetailApi(ProjectScopedMixin, APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = get_object_or_404(TrainingJob, project=self.project, pk=job_id)
        return Response(training_job_payload(job))


class ModelVersionListApi(ProjectScopedMixin, APIView):
    @extend_schema(operation_id="projects_model_versions_list", responses=dict)
    def get(self, request: Request, project_id: int) -> Response:
        versions = ModelVersion.objects.filter(project=self.project)[:MAX_LIST]
        return Response(
            {
                "active_model_key": self.project.default_model_key,
                "results": [model_version_payload(v) for v in versions],
            }
        )


class ModelVersionDetailApi(ProjectScopedMixin, APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, project_id: int, version_id: int) -> Response:
        version = get_object_or_404(ModelVersion, project=self.project, pk=version_id)
        return Response(model_version_payload(version))


class ModelVersionActivateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    class InputSerializer(serializers.Serializer[Any]):
        force = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request: Request, project_id: int, version_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = get_object_or_404(
            ModelVersion.objects.select_related("project", "training_job"),
            project=self.project,
            pk=version_id,
        )
        version = model_version_activate(version=version, **serializer.validated_data)
        return Response(model_version_payload(version))


class ModelVersionRollbackApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    @extend_schema(request=None, responses=dict)
    def post(self, request: Request, project_id: int) -> Response:
        project = model_version_rollback(project=self.project)
        return Response({"active_model_key": project.default_model_key})


class ProposalsApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.ANNOTATE}

    class InputSerializer(serializers.Serializer[Any]):
        image_ids = serializers.ListField(child=IdField(), required=False, allow_empty=False)
        pred_iou_thresh = job_option_field("auto_pred_iou_thresh")
        stability_score_thresh = job_option_field("auto_stability_score_thresh")
        max_overlap = serializers.FloatField(min_value=0, max_value=1, required=False)
        min_label_similarity = serializers.FloatField(min_value=-1, max_value=1, required=False)
        points_per_side = job_option_field("auto_points_per_side")

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        result = proposals_start(
            project=self.project,
            user=self.user,
            image_ids=data.pop("image_ids", None),
            options=data,
        )
        return Response(result, status=status.HTTP_202_ACCEPTED)


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
