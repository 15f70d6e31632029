"""Chunked, resumable uploads: open a session, send chunks at the server's offset, cancel.

POST   /projects/<id>/uploads/              {name, size} -> 201 session
GET    /projects/<id>/uploads/<uuid>/       the session (its `offset` is where to resume)
PATCH  /projects/<id>/uploads/<uuid>/       raw chunk, header Upload-Offset -> session;
                                            the last chunk also answers `result`, the
                                            same {created, duplicates} as a plain upload
DELETE /projects/<id>/uploads/<uuid>/       cancel: the session and its chunks go
"""

import uuid
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.api.images import ImageOutput
from samapp.api.permissions import ProjectScopedMixin
from samapp.errors import ApplicationError, PayloadTooLargeError
from samapp.models import UploadSession
from samapp.roles import Capability
from samapp.selectors.uploads import upload_session_get
from samapp.services.chunked_uploads import (
    upload_chunk_append,
    upload_session_complete,
    upload_session_create,
    upload_session_delete,
    upload_session_expires_at,
)

# Far above any configured size limit, far below what the database column holds.
MAX_DECLARED_BYTES = 2**50
CHUNK_CONTENT_TYPE = "application/offset+octet-stream"


class UploadSessionOutput(serializers.ModelSerializer[UploadSession]):
    offset = serializers.IntegerField(source="received")
    expires_at = serializers.SerializerMethodField()

    def get_expires_at(self, session: UploadSession) -> str:
        return upload_session_expires_at(session).isoformat()

    class Meta:
        model = UploadSession
        fields: tuple[str, ...] = ("id", "name", "size", "offset", "chunk_size", "expires_at")


class UploadResultOutput(serializers.Serializer[Any]):
    created = ImageOutput(many=True)
    duplicates = serializers.ListField(child=serializers.DictField())


class ChunkOutput(UploadSessionOutput):
    result = serializers.SerializerMethodField()

    def get_result(self, session: UploadSession) -> dict[str, Any] | None:
        result = self.context.get("result")
        return None if result is None else UploadResultOutput(result).data

    class Meta(UploadSessionOutput.Meta):
        fields = (*UploadSessionOutput.Meta.fields, "result")


class UploadSessionCreateApi(ProjectScopedMixin, APIView):
    capabilities = {"POST": Capability.MANAGE}

    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=255)
        size = serializers.IntegerField(min_value=1, max_value=MAX_DECLARED_BYTES)

    @extend_schema(request=InputSerializer, responses={201: UploadSessionOutput})
    def post(self, request: Request, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = upload_session_create(
            project=self.project,
            user=self.user,
            name=serializer.validated_data["name"],
            size=serializer.validated_data["size"],
        )
        return Response(UploadSessionOutput(session).data, status=status.HTTP_201_CREATED)


class UploadSessionDetailApi(ProjectScopedMixin, APIView):
    capabilities = {
        "GET": Capability.MANAGE,
        "PATCH": Capability.MANAGE,
        "DELETE": Capability.MANAGE,
    }

    def _session(self, upload_id: uuid.UUID) -> UploadSession:
        session = upload_session_get(
            project=self.project,
            user=self.user,
            session_id=upload_id,
        )
        if session is None:
            raise Http404("No such upload (finished, cancelled or expired).")
        return session

    @extend_schema(responses=UploadSessionOutput)
    def get(self, request: Request, project_id: int, upload_id: uuid.UUID) -> Response:
        return Response(UploadSessionOutput(self._session(upload_id)).data)

    @extend_schema(
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        request={CHUNK_CONTENT_TYPE: {"type": "string", "format": "binary"}},
        responses=ChunkOutput,
    )
    def patch(self, request: Request, project_id: int, upload_id: uuid.UUID) -> Response:
        session = self._session(upload_id)
        offset = _offset_header(request)
        declared = request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > session.chunk_size:
            raise PayloadTooLargeError(
                f"A chunk holds at most {session.chunk_size} bytes, not {declared}.",
                {"chunk_size": session.chunk_size},
            )
        # Read one byte past the bound: a body without (or lying about) its length stops there.
        data = request._request.read(session.chunk_size + 1)
        session = upload_chunk_append(session=session, offset=offset, data=data)
        result = None
        if session.received == session.size:
            result = upload_session_complete(
                session=session,
                uploaded_by=self.user,
            )
        return Response(ChunkOutput(session, context={"result": result}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, upload_id: uuid.UUID) -> Response:
        upload_session_delete(session=self._session(upload_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _offset_header(request: Request) -> int:
    raw = request.headers.get("Upload-Offset", "")
    if not raw.isdigit() or len(raw) > 18:
        raise ApplicationError("Send the chunk's first byte as a non-negative 'Upload-Offset'.")
    return int(raw)
