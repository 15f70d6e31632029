"""Segment everything: start a job on one image, follow it."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import job_option_field
from samapp.api.permissions import ProjectScopedMixin
from samapp.models import Image, SegmentJob
from samapp.roles import Capability
from samapp.services.segment import segment_job_payload, segment_job_start


class SegmentEverythingApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.ANNOTATE}

    class InputSerializer(serializers.Serializer[Any]):
        points_per_side = job_option_field("auto_points_per_side")
        pred_iou_thresh = job_option_field("auto_pred_iou_thresh")
        stability_score_thresh = job_option_field("auto_stability_score_thresh")
        min_mask_region_area = job_option_field("auto_min_mask_region_area")

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request: Request, project_id: int, image_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        image = get_object_or_404(
            Image.objects.select_related("project"), project=self.project, pk=image_id
        )
        job = segment_job_start(
            image=image,
            user=self.user,
            options=dict(serializer.validated_data),
        )
        job.refresh_from_db()
        return Response(segment_job_payload(job), status=status.HTTP_202_ACCEPTED)


class SegmentJobDetailApi(ProjectScopedMixin, APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = get_object_or_404(SegmentJob, project=self.project, pk=job_id)
        return Response(segment_job_payload(job))
