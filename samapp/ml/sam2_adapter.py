"""SAM 2 behind the interfaces SAM's training and evaluation code use.

``Sam2AsSam`` gives a ``SAM2Base`` the attributes ``click_simulation`` and ``training`` read
(``prompt_encoder``, ``mask_decoder.predict_masks``, ``image_encoder.img_size``,
``mask_threshold``) plus ``encode`` for a batch of images; SAM 2's prompt encoder already has
SAM's interface, and its mask decoder additionally reads the image's two high-resolution maps.
``Sam2Clicks`` answers what ``evaluation``'s click simulation asks of a ``SamPredictor`` with a
``SAM2ImagePredictor`` whose features are set.
"""

from types import SimpleNamespace

import numpy as np
import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.utils.transforms import SAM2Transforms
from torch import Tensor, nn


class _DecoderView:
    """SAM's ``predict_masks`` over SAM 2's mask decoder (and its ``transformer``)."""

    def __init__(self, decoder: MaskDecoder) -> None:
        self.decoder = decoder
        self.transformer = decoder.transformer

    def predict_masks(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        high_res_features: list[Tensor],
    ) -> tuple[Tensor, Tensor]:
        """(N, 4, 4s, 4s) low-res logits (0: single-mask token, 1-3: multimask) and (N, 4)
        predicted IoU for N objects; ``image_embeddings`` (1, C, s, s) is repeated for them,
        ``high_res_features`` (1 or N, C0, 4s, 4s) and (1 or N, C1, 2s, 2s) broadcast."""
        masks, iou, _, _ = self.decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings,
            repeat_image=True,
            high_res_features=high_res_features,
        )
        return masks, iou


class Sam2AsSam(nn.Module):
    """``model`` (registered as ``self.model``: parameters and state dict are its own) behind
    the attributes SAM's training code uses."""

    pixel_mean: Tensor
    pixel_std: Tensor

    def __init__(self, model: SAM2Base) -> None:
        super().__init__()
        self.model = model
        self.mask_decoder = _DecoderView(model.sam_mask_decoder)
        self.image_encoder = SimpleNamespace(img_size=model.image_size)
        self.mask_threshold = 0.0
        transforms = SAM2Transforms(model.image_size, mask_threshold=0.0)
        mean, std = (
            255 * torch.tensor(v).view(1, 3, 1, 1) for v in (transforms.mean, transforms.std)
        )
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    @property
    def prompt_encoder(self) -> nn.Module:
        """SAM 2's prompt encoder (SAM's interface)."""
        return self.model.sam_prompt_encoder

    def encode(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The maps ``SAM2ImagePredictor.set_image_batch`` computes, with gradients.

        Arguments:
          images: (B, 3, S, S) float32 RGB in 0..255, S = ``model.image_size``.

        Returns:
          ``image_embed`` (B, C, S/16, S/16) and ``high_res_feats`` [(B, C0, S/4, S/4),
          (B, C1, S/8, S/8)], float32.
        """
        model = self.model
        backbone = model.forward_image((images - self.pixel_mean) / self.pixel_std)
        *high_res, top = backbone["backbone_fpn"][-model.num_feature_levels :]
        if model.directly_add_no_mem_embed:
            top = top + model.no_mem_embed.view(1, -1, 1, 1)
        return top, high_res


class Sam2Clicks:
    """What ``evaluation``'s click simulation uses of a ``SamPredictor`` (``model.mask_threshold``,
    ``device``, ``original_size``, ``transform.apply_coords``, ``predict_torch``), answered by
    a ``SAM2ImagePredictor`` whose features are set."""

    def __init__(self, predictor: SAM2ImagePredictor) -> None:
        self.predictor = predictor
        self.model = SimpleNamespace(mask_threshold=predictor.mask_threshold)
        self.device = predictor.device
        self.original_size = predictor._orig_hw[-1]
        self.transform = self

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, int]) -> Tensor:
        """(..., 2) xy in the original frame -> SAM 2's input frame (float32)."""
        return self.predictor._transforms.transform_coords(
            torch.as_tensor(coords), normalize=True, orig_hw=original_size
        )

    def predict_torch(
        self,
        point_coords: Tensor,
        point_labels: Tensor,
        mask_input: Tensor | None,
        multimask_output: bool,
        return_logits: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(N, M, H, W) masks or logits, (N, M) IoU, (N, M, 4s, 4s) low-res logits."""
        return self.predictor._predict(
            point_coords,
            point_labels,
            mask_input=mask_input,
            multimask_output=multimask_output,
            return_logits=return_logits,
        )
