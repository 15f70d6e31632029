"""Model keys to loaded models: the one place that loads a model, checks that a key can be
loaded, and hashes a checkpoint. It imports no other service, so every service that needs a
model (embeddings, decoders, segment everything, proposals, training) depends on it alone.

A key is either a registry model (`samapp.ml.registry`, weights under
`SAM_CHECKPOINT_DIR`) or a project's fine-tuned version (`samapp.ml.model_keys`): the
registry model with the version's stored weights (decoder, and the encoder's adapters or
blocks when the version trained them)."""

import copy
import hashlib
import io
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import default_storage

from samapp.ml.model_keys import is_version_key, registry_model_key
from samapp.models import ModelVersion

if TYPE_CHECKING:
    from sam2.modeling.sam2_base import SAM2Base
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)


class DecoderUnavailableError(Exception):
    """The model is unknown or has no checkpoint: nothing can be exported (HTTP 404)."""


@lru_cache(maxsize=2)
def base_model(model_key: str) -> "Sam":
    """A registry model on `SAM_DEVICE`, loaded once per process. The encoder's attention
    runs through SDPA (same embeddings within float rounding; bench/embedding_throughput.py)."""
    from samapp.ml.fast_encoder import use_sdpa_attention
    from samapp.ml.registry import CheckpointNotFoundError, load_model

    try:
        return use_sdpa_attention(
            load_model(
                model_key, device=settings.SAM_DEVICE, checkpoint_dir=settings.SAM_CHECKPOINT_DIR
            )
        )
    except CheckpointNotFoundError:
        if not settings.SAM_RANDOM_INIT_FALLBACK:
            raise
        logger.warning("no checkpoint for %s: using random weights (fallback on)", model_key)
        return use_sdpa_attention(
            load_model(model_key, device=settings.SAM_DEVICE, random_init=True)
        )


def _checkpoint_read(path: str) -> bytes:
    with default_storage.open(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def _checkpoint_state(model_key: str, checkpoint_path: str, checkpoint_sha256: str) -> Any:
    import torch

    data = _checkpoint_read(checkpoint_path)
    if hashlib.sha256(data).hexdigest() != checkpoint_sha256:
        raise RuntimeError(f"The checkpoint of {model_key} does not match its hash")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@lru_cache(maxsize=4)
def _version_model(
    model_key: str, checkpoint_path: str, checkpoint_sha256: str
) -> "Sam | SAM2Base":
    from samapp.ml.family_ops import finetune_ops

    state = _checkpoint_state(model_key, checkpoint_path, checkpoint_sha256)
    base = base_model(registry_model_key(model_key))
    return finetune_ops(base).apply_trained_state(copy.deepcopy(base), state).eval()


def _stored_version(model_key: str) -> ModelVersion:
    version = ModelVersion.objects.filter(model_key=model_key).first()
    if version is None or not version.checkpoint_path:
        raise LookupError(f"No trained model version {model_key!r}")
    return version


def model_version_model(*, model_key: str) -> "Sam | SAM2Base":
    """The model of a version key: the registry model with the version's weights (decoder,
    and the encoder's adapters or blocks). Loaded once per process (cached by hash)."""
    version = _stored_version(model_key)
    return _version_model(model_key, version.checkpoint_path, version.checkpoint_sha256)


def model_version_state(*, model_key: str) -> dict[str, Any]:
    """A stored version's state dict (relative to its registry model), hash-checked."""
    version = _stored_version(model_key)
    state: dict[str, Any] = _checkpoint_state(
        model_key, version.checkpoint_path, version.checkpoint_sha256
    )
    return state


def model_for_key(*, model_key: str) -> "Sam":
    """The model a key names: a registry model, or a project's fine-tuned version of one."""
    if is_version_key(model_key):
        return model_version_model(model_key=model_key)
    return base_model(model_key)


def model_version_available(*, model_key: str) -> bool:
    """Whether `model_key` names a version whose weights are stored."""
    return ModelVersion.objects.filter(model_key=model_key).exclude(checkpoint_path="").exists()


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    from samapp.ml.checkpoints import sha256_file

    return sha256_file(path)


def checkpoint_digest(*, model_key: str) -> str | None:
    """sha256 of a registry model's checkpoint file (hashed once per file version), or None
    for a fine-tuned version (its key names its weights) or a missing file."""
    from samapp.ml.registry import UnknownModelError, checkpoint_path

    if is_version_key(model_key):
        return None
    try:
        path = checkpoint_path(model_key, settings.SAM_CHECKPOINT_DIR)
    except UnknownModelError:
        return None
    if not path.is_file():
        return None
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def model_loadable_check(*, model_key: str) -> None:
    """Raise DecoderUnavailableError unless `model_key` can be loaded on a worker."""
    from samapp.ml.registry import UnknownModelError, checkpoint_path, get_spec

    if is_version_key(model_key):
        if not model_version_available(model_key=model_key):
            raise DecoderUnavailableError(f"No trained model version {model_key!r}.")
        return
    try:
        get_spec(model_key)
    except UnknownModelError as exc:
        raise DecoderUnavailableError(str(exc)) from exc
    if not checkpoint_path(model_key, settings.SAM_CHECKPOINT_DIR).is_file() and not (
        settings.SAM_RANDOM_INIT_FALLBACK
    ):
        raise DecoderUnavailableError(
            f"Model {model_key!r} is not on this server yet: a manager can download it "
            "from the Models page."
        )
