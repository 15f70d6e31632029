"""Segment everything with SAM 2: the package's own ``SAM2AutomaticMaskGenerator`` (point grid,
multimask decoding, predicted-IoU and stability filters, NMS, crop layers, optional mask-to-mask
refinement), with the full image's features taken from storage instead of encoded again.

Only the crop covering the whole image reuses the stored features; the smaller crops of
``crop_n_layers`` > 0 are encoded as the package does. Records are COCO RLE (``str`` counts)
with the fields of ``samapp.ml.automatic.generate_masks``'s.
"""

from typing import Any

import numpy as np
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from samapp.ml.embedding import ImageLike, to_rgb_array
from samapp.ml.sam2_embedding import (
    PREDICTOR_BUILD,
    Sam2ImageFeatures,
    sam2_predictor,
    set_sam2_predictor_features,
)


class _StoredFeaturesPredictor(SAM2ImagePredictor):
    """A predictor whose ``set_image`` of an image of the stored features' size uses them."""

    features: Sam2ImageFeatures | None = None

    def set_image(self, image: Any) -> None:
        stored = self.features
        if stored is not None and tuple(np.asarray(image).shape[:2]) == stored.original_size:
            set_sam2_predictor_features(self, stored)
            return
        super().set_image(image)


def generate_sam2_masks(
    model: SAM2Base,
    image: ImageLike,
    features: Sam2ImageFeatures | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """``SAM2AutomaticMaskGenerator(model, output_mode="coco_rle", **kwargs).generate(image)``,
    the full image's encoder pass replaced by ``features`` when given (the stored ones).

    Arguments:
      image: any form ``embedding.to_rgb_array`` accepts; (H, W) must match
        ``features.original_size``.
      kwargs: ``SAM2AutomaticMaskGenerator`` arguments (``points_per_side``,
        ``pred_iou_thresh``, ``stability_score_thresh``, ``crop_n_layers``, ``use_m2m``...).
    """
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    with PREDICTOR_BUILD:
        generator = SAM2AutomaticMaskGenerator(model, output_mode="coco_rle", **kwargs)
    old = generator.predictor
    predictor = sam2_predictor(
        model,
        _StoredFeaturesPredictor,
        mask_threshold=old.mask_threshold,
        max_hole_area=old._transforms.max_hole_area,
        max_sprinkle_area=old._transforms.max_sprinkle_area,
    )
    predictor.features = features
    generator.predictor = predictor
    records: list[dict[str, Any]] = generator.generate(to_rgb_array(image))
    return records
