"""Model keys of fine-tuned project versions (no torch, no Django: cheap to import anywhere).

A project's fine-tuned model is a registry model whose prompt encoder and mask decoder were
trained further; its image encoder is the base model's, frozen, so the image embeddings of
the base model are the version's embeddings too. Its key is
``"{base}-p{project_id}v{number}"`` (e.g. ``"sam_tiny-p3v2"``): a slug with at most single
dots between its parts (it appears in URLs and storage paths, as the registry keys such as
``sam2.1_hiera_tiny`` do), and the base key is recoverable without a database.
"""

import re

_VERSION_KEY = re.compile(
    r"^(?P<base>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)-p(?P<project>[0-9]+)v(?P<number>[0-9]+)$"
)


def version_model_key(base_model_key: str, project_id: int, number: int) -> str:
    """The key of version ``number`` of project ``project_id`` fine-tuned from ``base``."""
    key = f"{base_model_key}-p{project_id}v{number}"
    if not _VERSION_KEY.match(key):
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


def embedding_model_key(model_key: str) -> str:
    """The key image embeddings are stored under: the base model's for a version key."""
    parsed = parse_version_key(model_key)
    return model_key if parsed is None else parsed[0]
