"""Domain errors raised by services; the API turns them into 4xx responses with a message."""

from typing import Any


class ApplicationError(Exception):
    """Bad input or a rule broken: the client can fix it (HTTP 400)."""

    status_code = 400

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    status_code = 403


class VersionConflictError(ApplicationError):
    """A write based on a stale version (HTTP 412); `extra` carries the current object."""

    status_code = 412


class PreconditionRequiredError(ApplicationError):
    """A write without the version it is based on (HTTP 428)."""

    status_code = 428


class PayloadTooLargeError(ApplicationError):
    """A body or a declared size over a limit (HTTP 413)."""

    status_code = 413


class ConflictError(ApplicationError):
    """A write that does not follow the object's current state (HTTP 409); `extra` says it."""

    status_code = 409


class TooManyError(ApplicationError):
    """A per-user count limit reached (HTTP 429)."""

    status_code = 429
