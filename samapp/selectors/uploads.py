"""Reads of chunked upload sessions: a session is visible only to its uploader, until it expires."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from samapp.models import Project, UploadSession


def upload_session_expiry_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.SAM_UPLOAD_EXPIRY_SECONDS)


def upload_session_open_list(*, user: User) -> QuerySet[UploadSession]:
    """The user's sessions that have not expired, in every project."""
    return UploadSession.objects.filter(
        created_by=user, updated_at__gte=upload_session_expiry_cutoff()
    )


def upload_session_get(
    *, project: Project, user: User, session_id: uuid.UUID
) -> UploadSession | None:
    return upload_session_open_list(user=user).filter(project=project, pk=session_id).first()
