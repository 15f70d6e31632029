"""Images: upload (files or zip), list with filters, details, the file itself."""

from typing import Any

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin
from samapp.choices import ImageStatus
from samapp.models import Image
from samapp.roles import Capability
from samapp.selectors.embeddings import EmbeddingStatusPayload, embedding_status_map
from samapp.selectors.projects import image_list
from samapp.services.images import (
    MAX_ASSIGN_IMAGES,
    image_delete,
    image_update,
    images_assign,
)
from samapp.services.uploads import images_create, uploads_check


class ImageOutput(serializers.ModelSerializer[Image]):
    embedding = serializers.SerializerMethodField()

    def get_embedding(self, image: Image) -> EmbeddingStatusPayload:
        # One lookup for the whole page when listing (the root is then a ListSerializer).
        root = self.root
        statuses = getattr(root, "_embedding_statuses", None)
        if statuses is None or image.pk not in statuses:
            listed = root.instance if isinstance(root, serializers.ListSerializer) else None
            statuses = embedding_status_map(images=list(listed) if listed else [image])
            root._embedding_statuses = statuses  # type: ignore[attr-defined]
        return statuses[image.pk]

    class Meta:
        model = Image
        fields: tuple[str, ...] = (
            "id",
            "original_name",
            "sha256",
            "format",
            "width",
            "height",
            "status",
            "assignee",
            "created_at",
            "embedding",
        )


class ImageListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}
    parser_classes = [MultiPartParser, FormParser]

    class FilterSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=ImageStatus.choices, required=False)
        assignee = IdField(required=False)
        label = IdField(required=False)  # type: ignore[assignment]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ImageStatus.values),
            OpenApiParameter("assignee", int),
            OpenApiParameter("label", int),
        ],
        responses=ImageOutput(many=True),
    )
    def get(self, request: Request, project_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        images = image_list(
            project=self.project,
            status=filters.validated_data.get("status"),
            assignee_id=filters.validated_data.get("assignee"),
            label_id=filters.validated_data.get("label"),
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(images, request, self)
        return paginator.get_paginated_response(ImageOutput(page, many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
            }
        },
        responses={201: dict},
    )
    def post(self, request: Request, project_id: int) -> Response:
        files = [(f.name or "upload", f) for f in request.FILES.getlist("file")]
        checked = uploads_check(files=files)
        result = images_create(
            project=self.project,
            uploaded_by=self.user,
            images=checked,
        )
        body = {
            "created": ImageOutput(result.created, many=True).data,
            "duplicates": result.duplicates,
        }
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(body, status=code)


class ImageDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"PATCH": Capability.ANNOTATE, "DELETE": Capability.MANAGE}

    @extend_schema_serializer(component_name="ImageUpdate")
    class InputSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=ImageStatus.choices, required=False)
        assignee = IdField(required=False, allow_null=True)

    def _image(self, image_id: int) -> Image:
        return get_object_or_404(Image, project=self.project, pk=image_id)

    @extend_schema(responses=ImageOutput)
    def get(self, request: Request, project_id: int, image_id: int) -> Response:
        return Response(ImageOutput(self._image(image_id)).data)

    @extend_schema(request=InputSerializer, responses=ImageOutput)
    def patch(self, request: Request, project_id: int, image_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        image = image_update(
            image=self._image(image_id),
            data=dict(serializer.validated_data),
            actor=self.membership,
        )
        return Response(ImageOutput(image).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, image_id: int) -> Response:
        image_delete(image=self._image(image_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImageFileApi(ProjectScopedMixin, APIView):
    """The original file, as an attachment that browsers never render as a page."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, project_id: int, image_id: int) -> FileResponse:
        image = get_object_or_404(Image, project=self.project, pk=image_id)
        response = FileResponse(
            image.file.open("rb"),
            as_attachment=True,
            filename=image.original_name,
            content_type=f"image/{image.format.lower()}",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        response["ETag"] = f'"{image.sha256}"'
        return response


class ImageAssignApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    @extend_schema_serializer(component_name="ImageAssign")
    class InputSerializer(serializers.Serializer[Any]):
        images = serializers.ListField(
            child=IdField(), allow_empty=False, max_length=MAX_ASSIGN_IMAGES
        )
        assignee = IdField(allow_null=True, help_text="A member's user id, or null: nobody.")

    class OutputSerializer(serializers.Serializer[Any]):
        assigned = serializers.ListField(child=serializers.IntegerField())
        missing = serializers.ListField(child=serializers.IntegerField())

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        description="Assign many images to one member who can annotate (or to nobody). Ids "
        "that are not this project's images come back in `missing`.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = images_assign(
            project=self.project,
            image_ids=serializer.validated_data["images"],
            assignee_id=serializer.validated_data["assignee"],
            actor=self.membership,
        )
        return Response(result)
