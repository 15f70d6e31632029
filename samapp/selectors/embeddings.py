"""Embedding reads, scoped by membership."""

from collections.abc import Iterable
from typing import TypedDict

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.urls import reverse

from samapp.ml.model_keys import embedding_model_key
from samapp.models import Embedding, Image


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
        pk: embedding_model_key(key)  # a fine-tuned version uses its base model's embeddings
        for pk, key in Project.objects.filter(pk__in=project_ids).values_list(
            "pk", "default_model_key"
        )
    }
    pairs = {(image.sha256, keys[image.project_id]) for image in images}
    found = {
        (e.image_sha256, e.model_key): e
        for e in Embedding.objects.filter(
            image_sha256__in={sha for sha, _ in pairs}, model_key__in={key for _, key in pairs}
        )
    }
    return {
        image.pk: embedding_status_payload(
            embedding=found.get((image.sha256, keys[image.project_id])),
            model_key=keys[image.project_id],
            sha256=image.sha256,
        )
        for image in images
    }


def embedding_get_visible(
    *, user: AbstractBaseUser | AnonymousUser, model_key: str, sha256: str
) -> Embedding | None:
    """The embedding, if `user` belongs to a project holding an image with that content."""
    if not user.is_authenticated:
        return None
    if not Image.objects.filter(sha256=sha256, project__memberships__user_id=user.pk).exists():
        return None
    return Embedding.objects.filter(
        image_sha256=sha256, model_key=embedding_model_key(model_key)
    ).first()
