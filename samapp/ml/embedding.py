"""Image embeddings: batched encoding, compact serialization, and reuse by SAM's predictor.

Preprocessing is SAM's own (``ResizeLongestSide.apply_image`` then ``Sam.preprocess``), so an
embedding from ``compute_embeddings`` equals ``SamPredictor.set_image`` on the same image up to
float rounding. Serialized forms (little-endian, C order, shape (C, h, w)):

- ``"fp16"``: C*h*w float16 values (2 MiB for the ViT models' 256x64x64).
- ``"int8"``: C float32 per-channel scales, then C*h*w int8 values with
  ``x = q * scale[c]`` (1 MiB + 1 KiB for the ViT models).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from segment_anything import SamPredictor
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

ImageLike = Image.Image | np.ndarray
EmbeddingFormat = Literal["fp16", "int8"]


@dataclass(frozen=True)
class ImageEmbedding:
    """The image encoder's output for one image and the sizes the decoder needs.

    Attributes:
      embedding: (C, h, w) float32, e.g. (256, 64, 64) for SAM ViT models.
      input_size: (H', W') of the image after ``ResizeLongestSide`` (before padding).
      original_size: (H, W) of the image as given (after EXIF orientation).
    """

    embedding: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]

    def to_bytes(self, fmt: EmbeddingFormat = "fp16") -> bytes:
        """Serialize the embedding tensor (sizes are stored by the caller) in ``fmt``."""
        array = self.embedding.detach().float().cpu().numpy()
        if fmt == "fp16":
            return array.astype("<f2").tobytes()
        if fmt == "int8":
            q, scales = quantize_int8(array)
            return scales.astype("<f4").tobytes() + q.tobytes()
        raise ValueError(f"Unknown embedding format {fmt!r}; use 'fp16' or 'int8'")

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        shape: Sequence[int],
        input_size: Sequence[int],
        original_size: Sequence[int],
        fmt: EmbeddingFormat = "fp16",
    ) -> "ImageEmbedding":
        """Inverse of ``to_bytes``; ``shape`` is (C, h, w). Returns float32 on the CPU."""
        c, h, w = shape
        if fmt == "fp16":
            array = np.frombuffer(data, dtype="<f2", count=c * h * w).astype(np.float32)
        elif fmt == "int8":
            scales = np.frombuffer(data, dtype="<f4", count=c)
            q = np.frombuffer(data, dtype=np.int8, count=c * h * w, offset=4 * c)
            array = dequantize_int8(q.reshape(c, h, w), scales)
        else:
            raise ValueError(f"Unknown embedding format {fmt!r}; use 'fp16' or 'int8'")
        return cls(
            embedding=torch.from_numpy(array.reshape(c, h, w).copy()),
            input_size=(int(input_size[0]), int(input_size[1])),
            original_size=(int(original_size[0]), int(original_size[1])),
        )


def quantize_int8(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: (C, ...) float -> ((C, ...) int8, (C,) float32 scales)."""
    flat = array.reshape(array.shape[0], -1)
    scales = (np.abs(flat).max(axis=1) / 127.0).astype(np.float32)
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(flat / scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(array.shape), scales


def dequantize_int8(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(C, ...) int8 and (C,) scales -> (C, ...) float32."""
    return q.astype(np.float32) * scales.reshape((-1,) + (1,) * (q.ndim - 1))


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any PIL image or uint8 array (HW, HW1, HWC with 3 or 4 channels) -> (H, W, 3) uint8 RGB.

    PIL images are rotated by their EXIF orientation first; alpha is dropped.
    """
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 image array, got {array.dtype}")
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(f"Expected an HW, HW1, HWC3 or HWC4 array, got shape {array.shape}")
        image = Image.fromarray(array)
    return np.asarray(image.convert("RGB"))


@torch.inference_mode()
def compute_embeddings(
    model: Sam, images: Sequence[ImageLike], batch_size: int = 4
) -> list[ImageEmbedding]:
    """Encode ``images`` in batches of ``batch_size``.

    Runs under ``torch.inference_mode``; on CUDA the encoder runs under fp16 autocast. Each
    returned embedding is float32, (C, h, w), on the model's device.
    """
    device = model.pixel_mean.device
    dtype = next(model.image_encoder.parameters()).dtype
    transform = ResizeLongestSide(model.image_encoder.img_size)
    results: list[ImageEmbedding] = []
    for start in range(0, len(images), batch_size):
        arrays = [to_rgb_array(image) for image in images[start : start + batch_size]]
        resized = [transform.apply_image(array) for array in arrays]
        batch = torch.stack(
            [
                model.preprocess(torch.as_tensor(r, device=device).permute(2, 0, 1).to(dtype))
                for r in resized
            ]
        )
        with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            features = model.image_encoder(batch).float()
        results.extend(
            ImageEmbedding(
                embedding=f,
                input_size=(r.shape[0], r.shape[1]),
                original_size=(a.shape[0], a.shape[1]),
            )
            for f, r, a in zip(features, resized, arrays, strict=True)
        )
    return results


def set_predictor_embedding(predictor: SamPredictor, embedding: ImageEmbedding) -> None:
    """Make ``predictor`` decode against a precomputed embedding, as if ``set_image`` ran."""
    dtype = next(predictor.model.mask_decoder.parameters()).dtype
    predictor.reset_image()
    predictor.features = embedding.embedding.to(predictor.device, dtype)[None]
    predictor.input_size = embedding.input_size
    predictor.original_size = embedding.original_size
    predictor.is_image_set = True
