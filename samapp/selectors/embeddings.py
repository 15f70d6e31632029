"""Embedding reads, scoped by membership."""

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.storage import default_storage
from django.db.models import Q
from django.urls import reverse

from samapp.choices import EmbeddingStatus
from samapp.ml.model_keys import embedding_model_key
from samapp.models import Embedding, Image

if TYPE_CHECKING:
    from samapp.ml.embedding import ImageEmbedding
    from samapp.ml.sam2_embedding import Sam2ImageFeatures


def embedding_scope(*, project_id: int) -> int | None:
    """The `Embedding.project` of a project's images: None (shared by content) when sharing
    across projects is on, else the project itself."""
    return None if settings.SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS else project_id


def embedding_url(*, model_key: str, sha256: str) -> str:
    return reverse("embedding-file", kwargs={"model_key": model_key, "sha256": sha256})


class EmbeddingStatusPayload(TypedDict):
    """An image's embedding: `url` once ready, `error` once failed."""

    status: str
    url: str | None
    error: str
    model_key: str


def embedding_status_payload(
    *, embedding: Embedding | None, model_key: str, sha256: str
) -> EmbeddingStatusPayload:
    """The `embedding` JSON of an image: status, url once ready, error once failed."""
    if embedding is None:
        return {"status": "missing", "url": None, "error": "", "model_key": model_key}
    ready = embedding.status == "ready"
    return {
        "status": embedding.status,
        "url": embedding_url(model_key=model_key, sha256=sha256) if ready else None,
        "error": embedding.error,
        "model_key": model_key,
    }


def embedding_status_map(*, images: Iterable[Image]) -> dict[int, EmbeddingStatusPayload]:
    """`embedding_status_payload` for each image (by id) for its project's model, in 2 queries."""
    images = list(images)
    project_ids = {image.project_id for image in images}
    from samapp.models import Project

    keys = {
        pk: embedding_model_key(key)  # a version's own, or its base model's embeddings
        for pk, key in Project.objects.filter(pk__in=project_ids).values_list(
            "pk", "default_model_key"
        )
    }
    scopes = {pk: embedding_scope(project_id=pk) for pk in project_ids}
    found = {
        (e.image_sha256, e.model_key, e.project_id): e
        for e in Embedding.objects.filter(
            image_sha256__in={image.sha256 for image in images},
            model_key__in=set(keys.values()),
        ).filter(_scoped(set(scopes.values())))
    }
    return {
        image.pk: embedding_status_payload(
            embedding=found.get((image.sha256, keys[image.project_id], scopes[image.project_id])),
            model_key=keys[image.project_id],
            sha256=image.sha256,
        )
        for image in images
    }


def _scoped(scopes: set[int | None]) -> Q:
    """Rows of these scopes (project ids; None: shared across projects)."""
    condition = Q(project_id__in=[scope for scope in scopes if scope is not None])
    if None in scopes:
        condition |= Q(project__isnull=True)
    return condition


def embedding_get_visible(
    *, user: AbstractBaseUser | AnonymousUser, model_key: str, sha256: str
) -> Embedding | None:
    """The embedding, if `user` belongs to a project holding an image with that content: the
    shared row, or (sharing off) the row of one of the user's projects holding it, a ready
    one first."""
    if not user.is_authenticated:
        return None
    project_ids = set(
        Image.objects.filter(sha256=sha256, project__memberships__user_id=user.pk).values_list(
            "project_id", flat=True
        )
    )
    if not project_ids:
        return None
    rows = Embedding.objects.filter(
        _scoped({embedding_scope(project_id=pk) for pk in project_ids}),
        image_sha256=sha256,
        model_key=embedding_model_key(model_key),
    )
    return min(rows, key=lambda row: (row.status != EmbeddingStatus.READY, row.pk), default=None)


def embedding_is_packed(*, embedding: Embedding) -> bool:
    """True when the stored blob is SAM 2's packed feature maps (self-describing header, see
    samapp.ml.sam2_embedding), False for SAM's one raw embedding tensor."""
    from samapp.ml.registry import model_family

    return model_family(embedding.model_key) == "sam2"


def int8_path(fp16_path: str) -> str:
    """The storage path of the int8 copy stored next to an fp16 embedding blob."""
    return fp16_path.removesuffix(".f16") + ".i8"


def embedding_read(*, embedding: Embedding, fmt: str = "fp16") -> bytes:
    """The stored bytes of a READY embedding in `fmt` (fp16 or int8)."""
    path = embedding.storage_path if fmt == "fp16" else int8_path(embedding.storage_path)
    with default_storage.open(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def embedding_load(*, embedding: Embedding) -> "ImageEmbedding":
    """A READY embedding row's tensor and sizes, read from storage."""
    from samapp.ml.embedding import ImageEmbedding

    return ImageEmbedding.from_bytes(
        embedding_read(embedding=embedding),
        shape=embedding.shape[1:],
        input_size=embedding.input_size,
        original_size=embedding.original_size,
    )


def features_load(*, embedding: Embedding) -> "ImageEmbedding | Sam2ImageFeatures":
    """What the decoder of the row's model reads: SAM's embedding or SAM 2's packed maps."""
    from samapp.ml.registry import model_family
    from samapp.ml.sam2_embedding import Sam2ImageFeatures

    if model_family(embedding.model_key) == "sam2":
        return Sam2ImageFeatures.from_bytes(
            embedding_read(embedding=embedding),
            input_size=embedding.input_size,
            original_size=embedding.original_size,
        )
    return embedding_load(embedding=embedding)
