"""Chunked, resumable uploads of one file (an image or a zip) bigger than one request may carry.

A session declares the file's name and size; chunks arrive in order at the offset the server
holds (`received`), each stored as its own object in the default storage (local disk or S3
alike). The last chunk assembles the file into a temporary file on disk, chunk by chunk, and
passes it through the same checks as a plain upload (`uploads_check`, `images_create`)."""

import shutil
import tempfile
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from samapp.errors import ApplicationError, ConflictError, PayloadTooLargeError, TooManyError
from samapp.models import Project, UploadSession
from samapp.roles import project_writable_check
from samapp.selectors.uploads import upload_session_expiry_cutoff, upload_session_open_list
from samapp.services.uploads import UploadResult, images_create, uploads_check

# Expired sessions deleted per new session: cleanup work stays bounded per request.
PURGE_BATCH = 50


def upload_session_expires_at(session: UploadSession) -> datetime:
    return session.updated_at + timedelta(seconds=settings.SAM_UPLOAD_EXPIRY_SECONDS)


def _chunk_name(session: UploadSession, index: int) -> str:
    return f"upload-chunks/{session.pk}/{index:06d}"


def _chunk_count(session: UploadSession) -> int:
    return -(-session.received // session.chunk_size)


def upload_session_create(*, project: Project, user: User, name: str, size: int) -> UploadSession:
    """Open a session for one file of `size` bytes, within the per-file and per-user limits."""
    project_writable_check(project)
    upload_sessions_purge_expired(limit=PURGE_BATCH)
    is_archive = name.lower().endswith(".zip")
    limit = settings.SAM_UPLOAD_MAX_BYTES if is_archive else settings.SAM_MAX_UPLOAD_BYTES
    if size > limit:
        kind = "a zip archive" if is_archive else "an image (name archives '.zip')"
        raise PayloadTooLargeError(
            f"{name}: {size} bytes is over the {limit}-byte limit for {kind}.", {"limit": limit}
        )
    with transaction.atomic():
        # One uploader's concurrent requests queue here, so the quota cannot be overrun.
        User.objects.select_for_update().filter(pk=user.pk).first()
        open_sessions = upload_session_open_list(user=user)
        if open_sessions.count() >= settings.SAM_UPLOAD_MAX_OPEN:
            raise TooManyError(
                f"You have {settings.SAM_UPLOAD_MAX_OPEN} uploads in progress: finish or "
                "cancel one first."
            )
        pending = open_sessions.aggregate(total=Sum("size"))["total"] or 0
        if pending + size > settings.SAM_UPLOAD_MAX_PENDING_BYTES:
            raise PayloadTooLargeError(
                f"{name}: uploads in progress would hold {pending + size} bytes, over your "
                f"{settings.SAM_UPLOAD_MAX_PENDING_BYTES}-byte limit: finish or cancel some first.",
                {"pending": pending, "limit": settings.SAM_UPLOAD_MAX_PENDING_BYTES},
            )
        return UploadSession.objects.create(
            id=uuid.uuid4(),
            project=project,
            created_by=user,
            name=name,
            size=size,
            chunk_size=settings.SAM_UPLOAD_CHUNK_BYTES,
        )


def upload_chunk_append(*, session: UploadSession, offset: int, data: bytes) -> UploadSession:
    """Store the chunk that starts at the session's current offset; any other offset is a 409
    that tells the client where to resume."""
    if offset != session.received:
        raise ConflictError(
            f"This upload continues at byte {session.received}, not {offset}.",
            {"offset": session.received},
        )
    if len(data) > session.chunk_size:
        raise PayloadTooLargeError(
            f"A chunk holds at most {session.chunk_size} bytes, not {len(data)}.",
            {"chunk_size": session.chunk_size},
        )
    end = offset + len(data)
    if not data or end > session.size:
        raise ApplicationError(
            f"A chunk at byte {offset} of a {session.size}-byte file holds 1 to "
            f"{session.size - offset} bytes, not {len(data)}."
        )
    if end < session.size and len(data) != session.chunk_size:
        raise ApplicationError(
            f"Every chunk but the last holds exactly {session.chunk_size} bytes, not {len(data)}."
        )
    name = _chunk_name(session, offset // session.chunk_size)
    # A chunk whose request died after storing it but before counting it is sent again.
    default_storage.delete(name)
    stored = default_storage.save(name, ContentFile(data))
    if stored != name:
        default_storage.delete(stored)
        raise ConflictError("This chunk is being stored by another request.", {"offset": offset})
    moved = UploadSession.objects.filter(pk=session.pk, received=offset).update(
        received=end, updated_at=timezone.now()
    )
    if not moved:
        session.refresh_from_db()
        raise ConflictError(
            f"This upload continues at byte {session.received}, not {offset}.",
            {"offset": session.received},
        )
    session.refresh_from_db()
    return session


def upload_session_complete(*, session: UploadSession, uploaded_by: User) -> UploadResult:
    """Assemble a fully received file on disk and store its images; the session ends either
    way (a file that fails the checks is not worth resuming)."""
    if session.received != session.size:
        raise ConflictError(
            f"{session.name}: {session.received} of {session.size} bytes received so far.",
            {"offset": session.received},
        )
    try:
        with tempfile.TemporaryFile(prefix="samstudio-chunked-") as assembled:
            for index in range(_chunk_count(session)):
                try:
                    with default_storage.open(_chunk_name(session, index), "rb") as chunk:
                        shutil.copyfileobj(chunk, assembled)
                except OSError as exc:
                    raise ApplicationError(
                        f"{session.name}: a stored chunk is missing: send the file again."
                    ) from exc
            if assembled.tell() != session.size:
                raise ApplicationError(f"{session.name}: the stored chunks do not add up.")
            assembled.seek(0)
            checked = uploads_check(files=[(session.name, assembled)])
        return images_create(project=session.project, uploaded_by=uploaded_by, images=checked)
    finally:
        upload_session_delete(session=session)


def upload_session_delete(*, session: UploadSession) -> None:
    # One past the counted chunks: a chunk stored by a request that died before counting it.
    for index in range(_chunk_count(session) + 1):
        default_storage.delete(_chunk_name(session, index))
    session.delete()


def upload_sessions_purge_expired(*, limit: int) -> int:
    """Delete up to `limit` abandoned sessions (untouched past the expiry) and their chunks."""
    expired = list(
        UploadSession.objects.filter(updated_at__lt=upload_session_expiry_cutoff()).order_by(
            "updated_at"
        )[:limit]
    )
    for session in expired:
        upload_session_delete(session=session)
    return len(expired)
