"""The project room's websocket contract: every server → client event, its name and its
payload type, declared once.

Services and the consumer send events through these `ServerEvent` constants, so mypy checks
each payload against its TypedDict; `python manage.py events_ts` writes the TypeScript types
of the browser (`frontend/src/api/events.gen.ts`) from `SERVER_EVENTS`, and a test fails when
the committed file differs from what this module generates.

A `ServerEvent` is a `str` (its name), so it compares and serializes as the plain name."""

from collections.abc import Mapping
from typing import Any, Generic, Literal, NotRequired, Self, TypedDict, TypeVar

P = TypeVar("P", bound=Mapping[str, object])


class ServerEvent(str, Generic[P]):
    """An event name bound to its payload type. `payload_type` is the TypedDict (or union of
    them) that the TypeScript generator reads; `logged` events go through the annotation log
    and so also carry its per-project `seq`."""

    payload_type: Any
    logged: bool

    def __new__(cls, name: str, payload_type: Any, *, logged: bool = False) -> Self:
        event = super().__new__(cls, name)
        event.payload_type = payload_type
        event.logged = logged
        return event


# ---------------------------------------------------------------- payloads


class UserRef(TypedDict):
    id: int
    username: str


class HelloPayload(TypedDict):
    role: str
    user: UserRef
    seq: int


class PresenceUser(TypedDict):
    id: int
    username: str
    image: int | None


class PresencePayload(TypedDict):
    users: list[PresenceUser]


class CaughtUpPayload(TypedDict):
    # The last seq replayed; `more` when the log goes on past this page (ask again after it).
    seq: int
    more: bool


class ErrorPayload(TypedDict):
    detail: str


class CompressedRle(TypedDict):
    size: tuple[int, int]
    counts: str


class AnnotationPrompts(TypedDict, total=False):
    points: list[tuple[float, float]]
    labels: list[int]
    box: tuple[float, float, float, float] | None


AnnotationSource = Literal["click", "box", "manual", "automatic", "imported"]
ReviewState = Literal["proposed", "accepted", "rejected"]


class AnnotationPayload(TypedDict):
    """An annotation as REST and the websocket send it (`annotation_payload`)."""

    id: int
    image: int
    label: int | None
    rle: CompressedRle
    bbox: list[float]
    area: int
    predicted_iou: float | None
    source: AnnotationSource
    prompts: AnnotationPrompts
    model_key: str
    author: int | None
    version: int
    review_state: ReviewState
    review_reason: str
    reviewed_by: int | None
    reviewed_at: str | None
    created_at: str
    updated_at: str


class AnnotationDeletedPayload(TypedDict):
    """`version` is the one the deletion made; `image` lets a page that shows one image
    ignore other images' deletions without holding their annotations."""

    id: int
    image: int
    version: int


class AnnotationsBulkCreatedPayload(TypedDict):
    """`count` annotations created at once on `images` (every one of them: a page that shows
    one fetches its annotations again). An import holds at most `SAM_MAX_ARCHIVE_ENTRIES`
    images, so the list stays a few tens of KB."""

    count: int
    images: list[int]


class ReviewedAnnotation(TypedDict):
    id: int
    image: int
    version: int


class AnnotationsReviewedPayload(TypedDict):
    """One review decision on many annotations: the review fields they now share and each
    one's new version (its `updated_at` is `reviewed_at`). Only these fields changed, so the
    masks are not sent again and a bulk review of thousands stays one small event."""

    review_state: ReviewState
    review_reason: str
    reviewed_by: int | None
    reviewed_at: str
    annotations: list[ReviewedAnnotation]


class EmbeddingReadyPayload(TypedDict):
    sha256: str
    model_key: str


class EmbeddingFailedPayload(TypedDict):
    sha256: str
    model_key: str
    error: str


JobStateName = Literal["queued", "running", "done", "failed"]


class ExportProgress(TypedDict):
    kind: Literal["export"]
    id: int
    state: JobStateName
    progress: float


class SegmentProgress(TypedDict):
    kind: Literal["segment"]
    id: int
    image: int
    state: JobStateName
    progress: float
    error: str
    annotations: int
    # The generator's arguments as resolved (request, project settings, model defaults).
    options: dict[str, float]
    # One line for the page: how many masks were kept, and what to try when none.
    summary: str


class ProposalsProgress(TypedDict):
    kind: Literal["proposals"]
    image: int
    state: JobStateName
    progress: float
    annotations: int


class TrainingProgress(TypedDict):
    """A training job; the websocket carries only the loss points added since the last event
    (`loss_curve`, starting at index `loss_from`)."""

    kind: Literal["training"]
    id: int
    state: JobStateName
    progress: float
    error: str
    base_model_key: str
    options: dict[str, Any]
    train_images: int
    train_objects: int
    held_out_images: int
    held_out_objects: int
    seconds: float | None
    loss_curve: list[float]
    model_version: int | None
    model_key: str | None
    loss_from: NotRequired[int]


JobProgress = ExportProgress | SegmentProgress | ProposalsProgress | TrainingProgress


class ModelActivatedPayload(TypedDict):
    model_key: str
    model_version: int | None


class ModelPendingPayload(TypedDict):
    """A project's model switch that waits for a download: `model_key` is the model it
    switches to once present, None when the wait ended without a switch (the download failed
    or another switch replaced it); `current_model_key` stays in use meanwhile. `failure`
    says why a failed download ended the wait (empty otherwise): the project's sockets may
    receive this event before the models group's `model.download`, so it carries the reason."""

    model_key: str | None
    current_model_key: str
    failure: str


class RegistryModelPayload(TypedDict):
    """A registry model's availability on this server (also `GET /api/models/<key>/`)."""

    key: str
    title: str
    state: Literal["absent", "downloading", "verifying", "present", "failed"]
    bytes_done: int
    bytes_total: int | None
    percent: float | None
    error: str
    downloadable: bool
    size_bytes: int | None
    runs_on: str
    family: Literal["sam", "sam2"]
    licence: str
    source: str
    automatic_defaults: dict[str, float]
    notice: str


# ---------------------------------------------------------------- events

HELLO = ServerEvent[HelloPayload]("hello", HelloPayload)
PRESENCE = ServerEvent[PresencePayload]("presence", PresencePayload)
CAUGHT_UP = ServerEvent[CaughtUpPayload]("caught_up", CaughtUpPayload)
ERROR = ServerEvent[ErrorPayload]("error", ErrorPayload)
ANNOTATION_CREATED = ServerEvent[AnnotationPayload](
    "annotation.created", AnnotationPayload, logged=True
)
ANNOTATION_UPDATED = ServerEvent[AnnotationPayload](
    "annotation.updated", AnnotationPayload, logged=True
)
ANNOTATION_DELETED = ServerEvent[AnnotationDeletedPayload](
    "annotation.deleted", AnnotationDeletedPayload, logged=True
)
ANNOTATIONS_BULK_CREATED = ServerEvent[AnnotationsBulkCreatedPayload](
    "annotations.bulk_created", AnnotationsBulkCreatedPayload, logged=True
)
ANNOTATIONS_REVIEWED = ServerEvent[AnnotationsReviewedPayload](
    "annotations.reviewed", AnnotationsReviewedPayload, logged=True
)
EMBEDDING_READY = ServerEvent[EmbeddingReadyPayload]("embedding.ready", EmbeddingReadyPayload)
EMBEDDING_FAILED = ServerEvent[EmbeddingFailedPayload]("embedding.failed", EmbeddingFailedPayload)
JOB_PROGRESS = ServerEvent[JobProgress]("job.progress", JobProgress)
MODEL_ACTIVATED = ServerEvent[ModelActivatedPayload]("model.activated", ModelActivatedPayload)
MODEL_PENDING = ServerEvent[ModelPendingPayload]("model.pending", ModelPendingPayload)
MODEL_DOWNLOAD = ServerEvent[RegistryModelPayload]("model.download", RegistryModelPayload)

SERVER_EVENTS: tuple[ServerEvent[Any], ...] = (
    HELLO,
    PRESENCE,
    CAUGHT_UP,
    ERROR,
    ANNOTATION_CREATED,
    ANNOTATION_UPDATED,
    ANNOTATION_DELETED,
    ANNOTATIONS_BULK_CREATED,
    ANNOTATIONS_REVIEWED,
    EMBEDDING_READY,
    EMBEDDING_FAILED,
    JOB_PROGRESS,
    MODEL_ACTIVATED,
    MODEL_PENDING,
    MODEL_DOWNLOAD,
)
