"""Browser decoders: ONNX exports of each model's prompt encoder + mask decoder, made once per
model by a worker (samapp.ml.onnx_export) and kept in the default storage under content-hashed
names, so they can be served with immutable caching by any web process."""

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from samapp.services.enqueue import enqueue_on_commit
from samapp.services.model_runtime import checkpoint_digest, model_for_key, model_loadable_check

logger = logging.getLogger(__name__)


def _folder(model_key: str) -> str:
    return f"decoders/{model_key}"


def decoder_file_path(*, model_key: str, filename: str) -> str:
    return f"{_folder(model_key)}/{filename}"


def decoder_manifest_get(*, model_key: str) -> dict[str, Any] | None:
    """The stored export manifest of `model_key`, or None when not exported yet."""
    path = f"{_folder(model_key)}/manifest.json"
    if not default_storage.exists(path):
        return None
    with default_storage.open(path, "rb") as handle:
        manifest: dict[str, Any] = json.loads(handle.read())
    wanted = set(settings.SAM_DECODER_VARIANTS)
    if manifest.get("family") == "sam2":  # SAM 2 has its own variants (samapp.ml.sam2_onnx)
        wanted = set(settings.SAM2_DECODER_VARIANTS)
    # A lossy variant that failed its parity probe is listed as rejected, not exported again.
    if not wanted <= set(manifest.get("variants", {})) | set(manifest.get("rejected", {})):
        return None  # exported with another variant list: export again
    if manifest.get("checkpoint_sha256") != checkpoint_digest(model_key=model_key):
        return None  # exported from other weights (a retrained or replaced checkpoint)
    if "offline_optimization" not in manifest:
        return None  # graphs stored before they were optimised offline (ml.onnx_common)
    return manifest


def decoder_state(*, model_key: str) -> tuple[str, dict[str, Any] | None]:
    """("ready", manifest), ("downloading", None) while the model's checkpoint is being
    downloaded, or ("exporting", None) while a worker exports it (queued here if needed).
    Raises DecoderUnavailableError for an unknown or absent model."""
    from samapp.ml.model_keys import is_version_key
    from samapp.selectors.models import model_download_active

    if not is_version_key(model_key) and model_download_active(model_key=model_key):
        return "downloading", None
    manifest = decoder_export_request(model_key=model_key)
    return ("ready", manifest) if manifest is not None else ("exporting", None)


def decoder_export_request(*, model_key: str) -> dict[str, Any] | None:
    """The manifest if exported; else queue the export (once per 10 minutes per process) and
    return None. Raises DecoderUnavailableError when the model cannot be loaded."""
    manifest = decoder_manifest_get(model_key=model_key)
    if manifest is not None:
        return manifest
    model_loadable_check(model_key=model_key)
    if cache.add(f"decoder-export:{model_key}", 1, timeout=600):
        enqueue_on_commit("decoder_export_task", model_key)
    return decoder_manifest_get(model_key=model_key)  # eager mode exports synchronously


def decoder_export(*, model_key: str) -> dict[str, Any]:
    """Export the configured variants of `model_key` into storage (idempotent)."""
    from samapp.ml.onnx_export import export_decoders
    from samapp.ml.sam2_models import is_sam2
    from samapp.ml.sam2_onnx import export_sam2_decoders

    existing = decoder_manifest_get(model_key=model_key)
    if existing is not None:
        return existing
    model = model_for_key(model_key=model_key)
    with tempfile.TemporaryDirectory(prefix="sam-decoder-") as tmp:
        if is_sam2(model):
            manifest = export_sam2_decoders(
                model, model_key, tmp, variants=list(settings.SAM2_DECODER_VARIANTS)
            )
        else:
            manifest = export_decoders(
                model, model_key, tmp, variants=list(settings.SAM_DECODER_VARIANTS)
            )
        manifest["checkpoint_sha256"] = checkpoint_digest(model_key=model_key)
        for entry in _file_entries(manifest):
            name = decoder_file_path(model_key=model_key, filename=entry["filename"])
            if not default_storage.exists(name):  # content-hashed: same name, same bytes
                default_storage.save(
                    name, ContentFile((Path(tmp) / entry["filename"]).read_bytes())
                )
    manifest_path = f"{_folder(model_key)}/manifest.json"
    if default_storage.exists(manifest_path):
        default_storage.delete(manifest_path)
    # Written last: readers see either no manifest or one whose files are all stored.
    default_storage.save(manifest_path, ContentFile(json.dumps(manifest).encode()))
    logger.info("exported %d decoder variants of %s", len(manifest["variants"]), model_key)
    return manifest


def decoder_file_get(*, model_key: str, filename: str) -> tuple[dict[str, Any], str] | None:
    """(variant entry, storage path) of an exported file, or None when it is not one."""
    manifest = decoder_manifest_get(model_key=model_key)
    if manifest is None:
        return None
    for entry in _file_entries(manifest):
        if entry["filename"] == filename:
            return entry, decoder_file_path(model_key=model_key, filename=filename)
    return None


def _file_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file of an export: each variant's graph and a fast variant's prepare graph."""
    variants = manifest["variants"].values()
    return [*variants, *(v["prepare"] for v in variants if "prepare" in v)]
