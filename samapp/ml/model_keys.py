"""Model keys of fine-tuned project versions (no torch, no Django: cheap to import anywhere).

A project's fine-tuned model is a registry model whose prompt encoder and mask decoder (and
possibly its image encoder) were trained further. Its key is
``"{base}-p{project_id}v{number}"`` (e.g. ``"sam_tiny-p3v2"``) when its image encoder is the
base model's, frozen: the base model's image embeddings are the version's embeddings too. A
version whose image encoder differs from the base model's (adapted itself, or trained from
a version that was) ends in ``e`` (``"sam_tiny-p3v2e"``) and its embeddings are stored under
its own key. Keys are slugs with at most single dots between their parts (they appear in
URLs and storage paths, as registry keys such as ``sam2.1_hiera_tiny`` do), and the base
key and the embedding key are recoverable without a database.
"""

import re
from typing import Literal

# What a fine-tuning job trains of the image encoder (``samapp.ml.encoder_adapt``): only
# "frozen" keeps the base model's embeddings valid.
EncoderMode = Literal["frozen", "lora", "blocks"]
ENCODER_MODES: tuple[EncoderMode, ...] = ("frozen", "lora", "blocks")

_VERSION_KEY = re.compile(
    r"^(?P<base>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)-p(?P<project>[0-9]+)v(?P<number>[0-9]+)"
    r"(?P<encoder>e?)$"
)


def version_model_key(
    base_model_key: str, project_id: int, number: int, own_encoder: bool = False
) -> str:
    """The key of version ``number`` of project ``project_id`` fine-tuned from ``base``;
    ``own_encoder``: its image encoder differs from the base model's."""
    key = f"{base_model_key}-p{project_id}v{number}{'e' if own_encoder else ''}"
    match = _VERSION_KEY.match(key)
    if not match or match["base"] != base_model_key:
        raise ValueError(f"Cannot derive a version key from base model {base_model_key!r}")
    return key


def parse_version_key(model_key: str) -> tuple[str, int, int] | None:
    """``(base, project_id, number)`` of a version key, None for a plain registry key."""
    match = _VERSION_KEY.match(model_key)
    if match is None:
        return None
    return match["base"], int(match["project"]), int(match["number"])


def is_version_key(model_key: str) -> bool:
    return _VERSION_KEY.match(model_key) is not None


def has_own_encoder(model_key: str) -> bool:
    """Whether a version key's image encoder differs from its base model's."""
    match = _VERSION_KEY.match(model_key)
    return match is not None and bool(match["encoder"])


def registry_model_key(model_key: str) -> str:
    """The registry model a key is (or was fine-tuned from)."""
    parsed = parse_version_key(model_key)
    return model_key if parsed is None else parsed[0]


def embedding_model_key(model_key: str) -> str:
    """The key image embeddings are stored under: the base model's for a version with the
    base model's image encoder, the version's own for one with its own encoder."""
    return model_key if has_own_encoder(model_key) else registry_model_key(model_key)
