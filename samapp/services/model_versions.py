"""Model versions: held-out splits and evaluation, stored weights, activation and rollback.

A training job (`samapp.services.training_jobs`) fine-tunes the project's current model
and stores the result as a `ModelVersion`, made active only if it beats the current model
on the held-out split. Its checkpoint holds the trained decoder modules and, when the
image encoder was adapted, the encoder's LoRA factors or trained blocks, all relative to
the registry model.

While a version is active, the project's `default_model_key` is the version's key
(`"sam_tiny-p3v2"`, see `samapp.ml.model_keys`): the browser loads that key's decoder
manifest, segment-everything and proposals decode with it. Its embeddings are the base
key's when the version kept the base encoder; a version with its own encoder
(`"sam_tiny-p3v2e"`) has its own, computed for the project's images before it becomes
active. Rolling back restores the key that was active before.

The held-out split is a pure function of each image's content hash, so it is the same for
every version and stable as images are added.
"""

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from samapp.choices import ModelVersionState, ReviewState
from samapp.errors import ApplicationError
from samapp.ml.family_ops import finetune_ops
from samapp.ml.model_keys import has_own_encoder, parse_version_key
from samapp.models import Annotation, Image, ModelVersion, Project
from samapp.realtime.contract import MODEL_ACTIVATED, ModelActivatedPayload
from samapp.realtime.events import broadcast
from samapp.selectors.embeddings import features_load
from samapp.services.embeddings import embeddings_ready, embeddings_schedule
from samapp.services.model_runtime import model_for_key

if TYPE_CHECKING:
    import numpy as np


logger = logging.getLogger(__name__)

DEFAULT_HELD_OUT_PERCENT = 20
PRIMARY_METRIC = "miou_1"


# ---------------------------------------------------------------- payloads


def model_version_payload(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "model_key": version.model_key,
        "base_model_key": version.base_model_key,
        "parent_model_key": version.parent_model_key,
        "state": version.state,
        "metrics": version.metrics,
        "baseline_metrics": version.baseline_metrics,
        "training_job": version.training_job_id,
        "checkpoint_bytes": version.checkpoint_bytes,
        "checkpoint_sha256": version.checkpoint_sha256,
        "decoder_manifest_sha256": {
            name: variant.get("sha256")
            for name, variant in version.decoder_manifest.get("variants", {}).items()
        },
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "created_at": version.created_at.isoformat(),
    }


# ---------------------------------------------------------------- data


def image_is_held_out(*, sha256: str, percent: int = DEFAULT_HELD_OUT_PERCENT) -> bool:
    """Whether an image belongs to the held-out split: a pure function of its content."""
    return int(sha256[:8], 16) % 100 < percent


@dataclass
class Split:
    # SAM's embeddings, or SAM 2's three maps per image.
    embeddings: list[Any]
    masks: list[list["np.ndarray"]]
    shas: list[str]

    @property
    def objects(self) -> int:
        return sum(len(m) for m in self.masks)


def project_splits(*, project: Project, model_key: str, percent: int) -> tuple[Split, Split]:
    """(train, held-out) of the project's accepted annotations with their embeddings."""
    from samapp.ml.masks import rle_to_mask

    by_image: dict[int, list[Annotation]] = {}
    accepted = Annotation.objects.filter(
        image__project=project, review_state=ReviewState.ACCEPTED
    ).order_by("image_id", "id")
    for annotation in accepted:
        by_image.setdefault(annotation.image_id, []).append(annotation)
    images = list(Image.objects.filter(pk__in=by_image).order_by("sha256"))
    embeddings = embeddings_ready(images=images, model_key=model_key)
    held_out_shas = {
        i.sha256 for i in images if image_is_held_out(sha256=i.sha256, percent=percent)
    }
    if images and not held_out_shas and percent > 0:
        held_out_shas = {images[0].sha256}  # a tiny project: hold out one image anyway
    train, held_out = Split([], [], []), Split([], [], [])
    for image in images:
        row = embeddings.get(image.sha256)
        if row is None:
            continue  # failed embedding: logged on the row, skipped here
        stored = features_load(embedding=row)
        masks = [rle_to_mask(a.rle).astype(bool) for a in by_image[image.pk]]
        masks = [m for m in masks if m.shape == tuple(row.original_size) and m.any()]
        if not masks:
            continue
        split = held_out if image.sha256 in held_out_shas else train
        split.embeddings.append(stored)
        split.masks.append(masks)
        split.shas.append(image.sha256)
    return train, held_out


def project_held_out_evaluate(
    *, project: Project, model_key: str, held_out_percent: int = DEFAULT_HELD_OUT_PERCENT
) -> dict[str, Any]:
    """Interactive metrics of `model_key` on the project's held-out split (see
    `samapp.ml.finetune.evaluate_embeddings`)."""
    _, held_out = project_splits(project=project, model_key=model_key, percent=held_out_percent)
    if not held_out.embeddings:
        raise ApplicationError("The held-out split has no annotated image yet.")
    model = model_for_key(model_key=model_key)
    return dict(finetune_ops(model).evaluate(model, held_out.embeddings, held_out.masks))


# ---------------------------------------------------------------- weights


def version_checkpoint_store(version: ModelVersion, state_dict: dict[str, Any]) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = f"model_versions/p{version.project_id}/v{version.number}/{digest[:16]}.pt"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(data))
    version.checkpoint_path = path
    version.checkpoint_sha256 = digest
    version.checkpoint_bytes = len(data)
    version.save(update_fields=["checkpoint_path", "checkpoint_sha256", "checkpoint_bytes"])


# ---------------------------------------------------------------- activation


def version_beats(metrics: dict[str, Any], baseline: dict[str, Any]) -> bool:
    return float(metrics.get(PRIMARY_METRIC, 0.0)) > float(baseline.get(PRIMARY_METRIC, 1.0))


def _announce(project: Project, version: ModelVersion | None) -> None:
    payload: ModelActivatedPayload = {
        "model_key": project.default_model_key,
        "model_version": version.pk if version else None,
    }
    transaction.on_commit(
        lambda: broadcast(project_id=project.pk, event=MODEL_ACTIVATED, payload=payload)
    )


def model_version_activate(*, version: ModelVersion, force: bool = False) -> ModelVersion:
    """Make `version` the project's model if it beats the current one on the held-out
    split (or `force`). The comparison is the one made at training time when the current
    model is still the version's parent; otherwise both are evaluated again now."""
    if version.state in (ModelVersionState.TRAINING, ModelVersionState.FAILED):
        raise ApplicationError(f"Version {version.number} is {version.state}: nothing to activate.")
    project = Project.objects.get(pk=version.project_id)  # the current key, not a stale copy
    current = project.default_model_key
    if current == version.model_key:
        return version
    if not force:
        if current == version.parent_model_key:
            ours, theirs = version.metrics, version.baseline_metrics
        else:
            percent = DEFAULT_HELD_OUT_PERCENT
            if version.training_job is not None:
                percent = version.training_job.options.get("held_out_percent", percent)
            ours = project_held_out_evaluate(
                project=project, model_key=version.model_key, held_out_percent=percent
            )
            theirs = project_held_out_evaluate(
                project=project, model_key=current, held_out_percent=percent
            )
        if not version_beats(ours, theirs):
            raise ApplicationError(
                f"Version {version.number} does not beat {current} on the held-out split "
                f"({PRIMARY_METRIC} {ours.get(PRIMARY_METRIC)} vs {theirs.get(PRIMARY_METRIC)})."
            )
    if has_own_encoder(version.model_key):
        # Its embeddings are its own: queued for every image now (a training job computes
        # them before activating, so then none is missing).
        embeddings_schedule(images=list(project.images.all()), model_key=version.model_key)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        ModelVersion.objects.filter(project=project, state=ModelVersionState.ACTIVE).update(
            state=ModelVersionState.READY
        )
        version.state = ModelVersionState.ACTIVE
        version.previous_model_key = project.default_model_key
        version.activated_at = timezone.now()
        version.save(update_fields=["state", "previous_model_key", "activated_at", "updated_at"])
        project.default_model_key = version.model_key
        project.save(update_fields=["default_model_key", "updated_at"])
        _announce(project, version)
    version.project = project
    return version


def model_version_rollback(*, project: Project) -> Project:
    """Deactivate the project's active version and return to the model active before it
    (another version, or the base model)."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        active = ModelVersion.objects.filter(
            project=project, model_key=project.default_model_key
        ).first()
        if active is None:
            raise ApplicationError("The project runs its base model: nothing to roll back.")
        target_key = active.previous_model_key or active.base_model_key
        active.state = ModelVersionState.ROLLED_BACK
        active.save(update_fields=["state", "updated_at"])
        target = None
        if parse_version_key(target_key) is not None:
            target = ModelVersion.objects.filter(project=project, model_key=target_key).first()
            if target is None:
                target_key = active.base_model_key
            else:
                target.state = ModelVersionState.ACTIVE
                target.save(update_fields=["state", "updated_at"])
        project.default_model_key = target_key
        project.save(update_fields=["default_model_key", "updated_at"])
        _announce(project, target)
    return project
