"""The fine-tuning functions of each model family, chosen from a loaded model: SAM's in
``samapp.ml.finetune``, SAM 2's in ``samapp.ml.sam2_finetune``. Training, evaluation and
version loading call these instead of asking which family they hold."""

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
