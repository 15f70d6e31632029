"""The functions of each model family, chosen from a loaded model: fine-tuning (SAM's in
``samapp.ml.finetune``, SAM 2's in ``samapp.ml.sam2_finetune``) and segment everything on
stored features (``samapp.ml.automatic``, ``samapp.ml.sam2_automatic``). Training,
evaluation, version loading, segment jobs and proposals call these instead of asking which
family they hold."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class FinetuneOps:
    """`make_sample(features, masks)` builds one training sample from an image's stored
    features (SAM: the (256, 64, 64) embedding; SAM 2: its three maps) and its (H, W) bool
    masks; `finetune`, `apply_trained_state` and `evaluate` are the family's own."""

    family: str
    make_sample: Callable[[Any, list["np.ndarray"]], Any]
    finetune: Callable[..., Any]
    apply_trained_state: Callable[[Any, dict[str, Any]], Any]
    evaluate: Callable[[Any, list[Any], list[list["np.ndarray"]]], dict[str, Any]]


def finetune_ops(model: Any) -> FinetuneOps:
    """The functions for `model` (a segment_anything ``Sam`` or a sam2 ``SAM2Base``)."""
    from samapp.ml import finetune, sam2_finetune
    from samapp.ml.sam2_models import is_sam2

    if is_sam2(model):
        return FinetuneOps(
            "sam2",
            lambda e, m: sam2_finetune.make_sam2_sample(e, m, model.image_size),
            sam2_finetune.finetune_sam2,
            sam2_finetune.apply_sam2_trained_state,
            sam2_finetune.evaluate_sam2_features,
        )
    return FinetuneOps(
        "sam",
        lambda e, m: finetune.make_sample(e, m, model.image_encoder.img_size),
        finetune.finetune,
        finetune.apply_trained_state,
        finetune.evaluate_embeddings,
    )


def automatic_masks(model: Any, image: Any, features: Any, **options: Any) -> list[dict[str, Any]]:
    """Segment everything on an image's stored features (SAM: an ``ImageEmbedding``; SAM 2:
    its ``Sam2ImageFeatures``) with the family's generator; ``options`` are the generator's
    (``points_per_side``, ``pred_iou_thresh``...). Returns its records (COCO RLE
    ``segmentation``, ``predicted_iou``, ``stability_score``, ``point_coords``...)."""
    from samapp.ml.automatic import generate_masks
    from samapp.ml.sam2_automatic import generate_sam2_masks
    from samapp.ml.sam2_models import is_sam2

    if is_sam2(model):
        return generate_sam2_masks(model, image, features, **options)
    return generate_masks(model, image, features, **options)


def mask_vector(model: Any, features: Any, mask: "np.ndarray") -> "np.ndarray | None":
    """``similarity.mask_embedding`` of an (H, W) bool mask on the features' lowest-resolution
    map, in the family's input frame (SAM pads to a square, SAM 2 stretches to one)."""
    from samapp.ml.sam2_models import is_sam2
    from samapp.ml.similarity import mask_embedding

    if is_sam2(model):
        return mask_embedding(features.embedding, mask, model.image_size, stretched=True)
    return mask_embedding(features.embedding, mask, model.image_encoder.img_size)
