"""Fine-tuning jobs and model versions (evaluation, activation, rollback).

Members read jobs and versions; starting a training job, activating and rolling back need
MANAGE."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.permissions import ProjectScopedMixin
from samapp.models import ModelVersion, TrainingJob
from samapp.roles import Capability
from samapp.services.model_versions import (
    model_version_activate,
    model_version_payload,
    model_version_rollback,
)
from samapp.services.training_jobs import (
    ENCODER_MODE_CHOICES,
    MAX_COPY_PASTE,
    training_job_payload,
    training_start,
)

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
        # What of the image encoder is trained (samapp.services.training_jobs).
        encoder_mode = serializers.ChoiceField(choices=ENCODER_MODE_CHOICES, required=False)
        encoder_blocks = serializers.IntegerField(min_value=0, max_value=64, required=False)
        encoder_rank = serializers.IntegerField(min_value=1, max_value=64, required=False)
        # Objects of another image pasted into each (with a trained encoder; 0: none).
        copy_paste = serializers.IntegerField(min_value=0, max_value=MAX_COPY_PASTE, required=False)

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
