"""Semi-automatic proposals: segment everything on many images, labels from the project's
accepted examples (needs ANNOTATE)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField, job_option_field
from samapp.api.permissions import ProjectScopedMixin
from samapp.roles import Capability
from samapp.services.proposals import proposals_start


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
