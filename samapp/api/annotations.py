"""Annotations: list and create per image, read/update/delete with optimistic concurrency."""

import re
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.fields import IdField
from samapp.api.pagination import StandardPagination
from samapp.api.permissions import ProjectScopedMixin
from samapp.choices import AnnotationSource, ReviewState
from samapp.errors import ApplicationError
from samapp.models import Annotation, Image
from samapp.roles import Capability
from samapp.selectors.projects import annotation_get, annotation_list, image_get
from samapp.services.annotations import (
    annotation_create,
    annotation_delete,
    annotation_payload,
    annotation_update,
)
from samapp.services.reviews import MAX_REASON_CHARS

ETAG_VERSION = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


class RleField(serializers.DictField):
    """COCO compressed RLE: {"size": [h, w], "counts": "..."}; checked by the service."""


# Prompts are a record of how a mask was made (shown again when it is edited, counted by the
# analytics): the clicks, the box and the annotation whose mask was the decoder's mask input.
MAX_PROMPT_POINTS = 256


class CoordinateField(serializers.FloatField):
    """A prompt's x or y in image pixels; within the largest mask side either way."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -65_536)
        kwargs.setdefault("max_value", 65_536)
        super().__init__(**kwargs)


class PromptsInput(serializers.Serializer[Any]):
    points = serializers.ListField(
        child=serializers.ListField(child=CoordinateField(), min_length=2, max_length=2),
        max_length=MAX_PROMPT_POINTS,
        required=False,
    )
    # SAM's point labels: 1 foreground, 0 background.
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=1),
        max_length=MAX_PROMPT_POINTS,
        required=False,
    )
    box = serializers.ListField(
        child=CoordinateField(),
        min_length=4,
        max_length=4,
        required=False,
        allow_null=True,
    )
    mask = IdField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                keys = ", ".join(repr(key[:20]) for key in unknown[:5])
                raise serializers.ValidationError(f"Unknown prompt keys: {keys}.")
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        points, labels = attrs.get("points"), attrs.get("labels")
        if labels is not None and len(labels) != len(points or []):
            raise serializers.ValidationError("labels needs one entry per point.")
        return attrs


class AnnotationOutput(serializers.Serializer[Any]):
    """`annotation_payload`, the form REST and websockets share; the fields declared here
    describe it in the OpenAPI schema (a test keeps them equal to the payload's keys)."""

    id = serializers.IntegerField()
    image = serializers.IntegerField()
    label = serializers.IntegerField(allow_null=True)  # type: ignore[assignment]
    rle = RleField()
    bbox = serializers.ListField(child=serializers.FloatField())
    area = serializers.IntegerField()
    predicted_iou = serializers.FloatField(allow_null=True)
    source = serializers.ChoiceField(choices=AnnotationSource.choices)  # type: ignore[assignment]
    prompts = serializers.DictField()
    model_key = serializers.CharField()
    author = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField()
    review_state = serializers.ChoiceField(choices=ReviewState.choices)
    review_reason = serializers.CharField(help_text="The last reviewer's reason.")
    reviewed_by = serializers.IntegerField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: Annotation) -> dict[str, Any]:
        return dict(annotation_payload(instance))


class AnnotationInput(serializers.Serializer[Any]):
    label = IdField(required=False, allow_null=True)  # type: ignore[assignment]
    rle = RleField()
    predicted_iou = serializers.FloatField(required=False, allow_null=True)
    source = serializers.ChoiceField(choices=AnnotationSource.choices, required=False)  # type: ignore[assignment]
    prompts = PromptsInput(required=False)
    model_key = serializers.CharField(required=False, allow_blank=True, max_length=64)
    review_state = serializers.ChoiceField(choices=ReviewState.choices, required=False)
    review_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_REASON_CHARS
    )
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)


MAX_VERSION = 2**31 - 1  # the version column's range on every database


def _expected_version(request: Request, body: Any) -> int | None:
    """The version a write is based on: the If-Match header, else the body's `version`."""
    header = request.headers.get("If-Match")
    if header:
        match = ETAG_VERSION.match(header)
        if match is None or int(match.group(1)) > MAX_VERSION:
            raise ApplicationError(f'If-Match {header!r} is not a version such as "3".')
        return int(match.group(1))
    version = body.get("version") if isinstance(body, dict) else None
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise ApplicationError("version must be a positive integer.")
    if isinstance(version, str) and not version.isdecimal():
        raise ApplicationError("version must be a positive integer.")
    if not 1 <= int(version) <= MAX_VERSION:
        raise ApplicationError("version must be a positive integer.")
    return int(version)


def _with_etag(response: Response, annotation: Annotation) -> Response:
    response["ETag"] = f'"{annotation.version}"'
    return response


class ImageAnnotationListCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.ANNOTATE}

    def _image(self, image_id: int) -> Image:
        image = image_get(project=self.project, image_id=image_id)
        if image is None:
            raise Http404("No such image.")
        return image

    @extend_schema(responses=AnnotationOutput(many=True))
    def get(self, request: Request, project_id: int, image_id: int) -> Response:
        image = self._image(image_id)
        paginator = StandardPagination()
        annotations = annotation_list(project=self.project, image_id=image.id)
        page = paginator.paginate_queryset(annotations, request, self)
        return paginator.get_paginated_response(AnnotationOutput(page, many=True).data)

    @extend_schema(request=AnnotationInput, responses={201: AnnotationOutput})
    def post(self, request: Request, project_id: int, image_id: int) -> Response:
        image = self._image(image_id)
        serializer = AnnotationInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        data.pop("review_reason", None)
        annotation = annotation_create(
            image=image,
            author=self.user,
            actor=self.membership,
            **data,
        )
        response = Response(AnnotationOutput(annotation).data, status=status.HTTP_201_CREATED)
        return _with_etag(response, annotation)


class AnnotationListApi(ProjectScopedMixin, APIView):
    class FilterSerializer(serializers.Serializer[Any]):
        image = IdField(required=False)
        review_state = serializers.ChoiceField(choices=ReviewState.choices, required=False)
        author = IdField(required=False, help_text="The annotator (user id).")
        label = IdField(required=False)  # type: ignore[assignment]
        source = serializers.ChoiceField(choices=AnnotationSource.choices, required=False)  # type: ignore[assignment]

    @extend_schema(parameters=[FilterSerializer], responses=AnnotationOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        annotations = annotation_list(
            project=self.project,
            image_id=given.get("image"),
            review_state=given.get("review_state"),
            author_id=given.get("author"),
            label_id=given.get("label"),
            source=given.get("source"),
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(annotations, request, self)
        return paginator.get_paginated_response(AnnotationOutput(page, many=True).data)


class AnnotationDetailApi(ProjectScopedMixin, APIView):
    capabilities = {"PATCH": Capability.ANNOTATE, "DELETE": Capability.ANNOTATE}

    def _annotation(self, annotation_id: int) -> Annotation:
        annotation = annotation_get(project=self.project, annotation_id=annotation_id)
        if annotation is None:
            raise Http404("No such annotation.")
        return annotation

    @extend_schema(responses=AnnotationOutput)
    def get(self, request: Request, project_id: int, annotation_id: int) -> Response:
        annotation = self._annotation(annotation_id)
        return _with_etag(Response(AnnotationOutput(annotation).data), annotation)

    @extend_schema(
        request=AnnotationInput,
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses=AnnotationOutput,
    )
    def patch(self, request: Request, project_id: int, annotation_id: int) -> Response:
        annotation = self._annotation(annotation_id)
        serializer = AnnotationInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        expected = _expected_version(request, data)
        data.pop("version", None)
        updated = annotation_update(
            annotation=annotation, expected_version=expected, data=data, actor=self.membership
        )
        return _with_etag(Response(AnnotationOutput(updated).data), updated)

    @extend_schema(
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses={204: None},
    )
    def delete(self, request: Request, project_id: int, annotation_id: int) -> Response:
        annotation = self._annotation(annotation_id)
        annotation_delete(
            annotation=annotation,
            expected_version=_expected_version(request, request.data),
            actor=self.membership,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
