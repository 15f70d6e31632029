"""An annotator's work queue: the images assigned to them that are not done yet."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.images import ImageOutput
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin
from samapp.choices import ImageStatus
from samapp.models import Annotation, Image
from samapp.roles import Capability
from samapp.selectors.projects import queue_list, rejected_annotations
from samapp.services.images import image_status_change


class QueueImageOutput(ImageOutput):
    rejected_count = serializers.IntegerField(
        read_only=True, help_text="Your annotations on this image that a reviewer rejected."
    )

    class Meta(ImageOutput.Meta):
        fields: tuple[str, ...] = (*ImageOutput.Meta.fields, "rejected_count")


class RejectionOutput(serializers.ModelSerializer[Annotation]):
    class Meta:
        model = Annotation
        fields = ("id", "label", "review_reason", "reviewed_by", "reviewed_at")


class QueueNextOutput(QueueImageOutput):
    rejections = serializers.SerializerMethodField()

    class Meta(QueueImageOutput.Meta):
        fields = (*QueueImageOutput.Meta.fields, "rejections")

    @extend_schema_field(RejectionOutput(many=True))
    def get_rejections(self, image: Image) -> list[dict[str, Any]]:
        user = self.context["user"]
        return RejectionOutput(rejected_annotations(image=image, author=user), many=True).data  # type: ignore[return-value]


class QueueDoneOutput(serializers.Serializer[Any]):
    image = ImageOutput()
    next = QueueNextOutput(allow_null=True)


class QueueListApi(ProjectScopedMixin, APIView):
    @extend_schema(
        responses=QueueImageOutput(many=True),
        description="The images assigned to you that are not done: those with rejected work "
        "first, then those in progress, then new ones.",
    )
    def get(self, request: Request, project_id: int) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            queue_list(project=self.project, user=request.user), request, self
        )
        return paginator.get_paginated_response(QueueImageOutput(page, many=True).data)


def _next(view: ProjectScopedMixin, request: Request) -> dict[str, Any] | None:
    image = queue_list(project=view.project, user=request.user).first()
    if image is None:
        return None
    return QueueNextOutput(image, context={"user": request.user}).data


class QueueNextApi(ProjectScopedMixin, APIView):
    @extend_schema(
        responses={200: QueueNextOutput, 204: None},
        description="The first image of your queue, with your rejected annotations on it and "
        "the reviewers' reasons; 204 when the queue is empty.",
    )
    def get(self, request: Request, project_id: int) -> Response:
        data = _next(self, request)
        if data is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(data)


class QueueDoneApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.ANNOTATE}

    @extend_schema(
        request=None,
        responses=QueueDoneOutput,
        description="Mark the image done (by the role-by-transition table) and get the next "
        "image of your queue (null when it is empty).",
    )
    def post(self, request: Request, project_id: int, image_id: int) -> Response:
        image = get_object_or_404(Image, project=self.project, pk=image_id)
        image_status_change(image=image, status=ImageStatus.DONE, actor=self.membership)
        return Response({"image": ImageOutput(image).data, "next": _next(self, request)})
