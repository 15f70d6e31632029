"""Semi-automatic stage of the data engine: confident proposals for what is not annotated yet.

For each image, the automatic mask generator of the project's current model's family (SAM's,
or SAM 2's own; the fine-tuned version when one is active) runs on the stored features; its
masks are kept when the
model is confident (predicted IoU and stability score above thresholds) and when they do not
overlap what the image already has (accepted or proposed annotations). Each survivor takes
the label of the most similar accepted annotations of the project (cosine similarity of
mask embeddings, see `samapp.ml.similarity`) when the similarity is high enough, and is
written as an `automatic` annotation in review state `proposed`: annotators accept or
reject proposals and add what is missing.

Running proposals again on an image replaces its earlier, still unreviewed proposals.
"""

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.storage import default_storage

from samapp.choices import AnnotationSource, ReviewState
from samapp.errors import ApplicationError
from samapp.models import Annotation, Image, Label, Project
from samapp.realtime.contract import JOB_PROGRESS, ProposalsProgress
from samapp.realtime.events import broadcast
from samapp.roles import project_writable_check
from samapp.selectors.embeddings import features_load
from samapp.services.annotations import (
    AnnotationDraft,
    annotations_bulk_create,
    annotations_discard,
)
from samapp.services.embeddings import embeddings_ready
from samapp.services.enqueue import enqueue_on_commit
from samapp.services.job_limits import job_quota_check, project_setting, proposal_points_check
from samapp.services.model_runtime import model_for_key
from samapp.services.segment import segment_options

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 300  # most recent accepted, labelled annotations used for labelling
MAX_IMAGES = 200


@dataclass(frozen=True)
class ProposalOptions:
    """Filters of the semi-automatic stage.

    Attributes:
      pred_iou_thresh: minimum predicted IoU (SAM's generator filter); None: the model's
        default (`samapp.ml.registry.automatic_defaults`).
      stability_score_thresh: minimum stability score (SAM's generator filter); None: the
        model's default.
      max_overlap: drop a mask when more than this share of it is already annotated.
      min_label_similarity: cosine similarity to the nearest labelled example needed to
        label a proposal (below it, the proposal is unlabelled).
      points_per_side: point grid of the generator (the project's setting when None).
    """

    pred_iou_thresh: float | None = None
    stability_score_thresh: float | None = None
    max_overlap: float = 0.5
    min_label_similarity: float = 0.8
    points_per_side: int | None = None


def _examples(*, project: Project, model_key: str, model: Any) -> tuple[np.ndarray, list[int]]:
    """(M, C) mask embeddings and label ids of the project's accepted, labelled masks."""
    from samapp.ml.family_ops import mask_vector
    from samapp.ml.masks import rle_to_mask

    annotations = list(
        Annotation.objects.filter(
            image__project=project, review_state=ReviewState.ACCEPTED, label__isnull=False
        )
        .select_related("image")
        .order_by("-created_at", "-id")[:MAX_EXAMPLES]
    )
    images = list({a.image_id: a.image for a in annotations}.values())
    ready = embeddings_ready(images=images, model_key=model_key) if images else {}
    loaded = {sha: features_load(embedding=row) for sha, row in ready.items()}
    vectors, labels = [], []
    for annotation in annotations:
        stored = loaded.get(annotation.image.sha256)
        if stored is None or annotation.label_id is None:
            continue
        vector = mask_vector(model, stored, rle_to_mask(annotation.rle))
        if vector is not None:
            vectors.append(vector)
            labels.append(annotation.label_id)
    if not vectors:
        return np.zeros((0, 1), np.float32), []
    return np.stack(vectors), labels


def _pixels(image: Image) -> Any:
    from PIL import Image as PILImage

    with default_storage.open(str(image.file.name), "rb") as handle:
        pixels = PILImage.open(io.BytesIO(handle.read()))
        pixels.load()
    return pixels


def proposals_generate(
    *,
    image: Image,
    user: User | None,
    options: ProposalOptions | None = None,
    examples: tuple[np.ndarray, list[int]] | None = None,
) -> list[Annotation]:
    """Write the proposals of one image (see the module docstring); returns them.

    `examples` are the labelled mask embeddings (`_examples`), computed once per run."""
    from samapp.ml.family_ops import automatic_masks, mask_vector
    from samapp.ml.masks import rle_to_mask
    from samapp.ml.similarity import nearest_label

    options = options or ProposalOptions()
    project = image.project
    model_key = project.default_model_key
    model = model_for_key(model_key=model_key)
    ready = embeddings_ready(images=[image], model_key=model_key)
    if image.sha256 not in ready:
        raise ApplicationError(f"Image {image.pk} has no embedding (its encoding failed).")
    stored = features_load(embedding=ready[image.sha256])
    annotations_discard(
        annotations=Annotation.objects.filter(
            image=image, review_state=ReviewState.PROPOSED, prompts__has_key="proposal"
        )
    )
    generator = segment_options(
        project=project,
        options={
            name: value
            for name in ("points_per_side", "pred_iou_thresh", "stability_score_thresh")
            if (value := getattr(options, name)) is not None
        },
    )
    records = automatic_masks(model, _pixels(image), stored, **generator)
    covered = np.zeros((image.height, image.width), bool)
    for annotation in Annotation.objects.filter(image=image).exclude(
        review_state=ReviewState.REJECTED
    ):
        covered |= rle_to_mask(annotation.rle)
    vectors, labels = (
        examples
        if examples is not None
        else _examples(project=project, model_key=model_key, model=model)
    )
    label_by_id = {label.pk: label for label in Label.objects.filter(project=project)}
    drafts = []
    for record in sorted(records, key=lambda r: -float(r["predicted_iou"])):
        mask = rle_to_mask(record["segmentation"])
        area = int(mask.sum())
        if area == 0 or (mask & covered).sum() > options.max_overlap * area:
            continue
        covered |= mask  # later (less confident) masks must not duplicate this one
        label_id, similarity = None, 0.0
        vector = mask_vector(model, stored, mask)
        if vector is not None:
            label_id, similarity = nearest_label(vector, vectors, labels)
        if similarity < options.min_label_similarity:
            label_id = None
        drafts.append(
            AnnotationDraft(
                image=image,
                rle=record["segmentation"],
                label=label_by_id.get(label_id) if label_id is not None else None,
                predicted_iou=float(record["predicted_iou"]),
                prompts={
                    "points": record["point_coords"],
                    "proposal": {
                        "stability_score": round(float(record["stability_score"]), 4),
                        "label_similarity": round(similarity, 4),
                    },
                },
                model_key=model_key,
            )
        )
    return annotations_bulk_create(
        drafts=drafts,
        author=user,
        source=AnnotationSource.AUTOMATIC,
        review_state=ReviewState.PROPOSED,
    )


def proposals_start(
    *,
    project: Project,
    user: User | None,
    image_ids: list[int] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Queue proposals for `image_ids` (default: the project's images that are not done)."""
    clean = ProposalOptions(**(options or {}))
    images = Image.objects.filter(project=project)
    if image_ids is not None:
        images = images.filter(pk__in=image_ids)
    else:
        images = images.filter(status__in=["new", "in_progress"])
    ids = list(images.order_by("id").values_list("pk", flat=True)[: MAX_IMAGES + 1])
    if not ids:
        raise ApplicationError("No images to propose masks for.")
    if len(ids) > MAX_IMAGES:
        raise ApplicationError(f"At most {MAX_IMAGES} images per request.")
    points = clean.points_per_side or project_setting(
        project=project, name="auto_points_per_side", default=32
    )
    proposal_points_check(images=len(ids), points_per_side=points)
    project_writable_check(project)
    job_quota_check(project=project, user=user)
    payload = {k: v for k, v in clean.__dict__.items()}

    enqueue_on_commit("proposals_run_task", project.pk, ids, user.pk if user else None, payload)
    return {"images": ids, "options": payload}


def proposals_run(
    *, project_id: int, image_ids: list[int], user_id: int | None, options: dict[str, Any]
) -> int:
    """Worker side of `proposals_start`; reports `job.progress` (kind "proposals")."""
    project = Project.objects.get(pk=project_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    clean = ProposalOptions(**options)
    model = model_for_key(model_key=project.default_model_key)
    examples = _examples(project=project, model_key=project.default_model_key, model=model)
    images = list(Image.objects.filter(project=project, pk__in=image_ids).order_by("id"))
    total = 0
    for done, image in enumerate(images, start=1):
        try:
            total += len(
                proposals_generate(image=image, user=user, options=clean, examples=examples)
            )
        except ApplicationError as exc:
            logger.warning("no proposals for image %s: %s", image.pk, exc.message)
        broadcast(
            project_id=project_id,
            event=JOB_PROGRESS,
            payload=ProposalsProgress(
                kind="proposals",
                image=image.pk,
                progress=round(done / len(images), 3),
                state="done" if done == len(images) else "running",
                annotations=total,
            ),
        )
    return total
