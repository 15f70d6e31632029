"""SAM 2 image features: batched encoding, one packed blob per image, reuse by the predictor.

SAM 2's mask decoder reads three maps of the image encoder: ``image_embed`` (C, s, s) and the
two high-resolution maps ``high_res_feats`` (C0, 4s, 4s) and (C1, 2s, 2s), already projected
by the decoder's ``conv_s0`` / ``conv_s1`` (for the 1024 px models s = 64, C = 256, C0 = 32,
C1 = 64). ``compute_sam2_features`` runs ``SAM2ImagePredictor.set_image_batch`` itself, so the
features equal the predictor's on the same image up to float rounding.

SAM 2 resizes every image to a square ``image_size`` (no aspect-preserving resize, no padding),
so ``input_size`` is (image_size, image_size): the browser's SAM prompt and mask arithmetic
(scale by input / original size per axis) then does exactly SAM 2's transforms.

Packed layout (``pack_tensors``; little-endian), read by the browser decoder worker::

    b"SAMF"  u32 version (1)  u32 n  header: n bytes of UTF-8 JSON, space-padded to 8 bytes
    {"dtype": "float16" | "int8",
     "tensors": [{"name", "shape": [C, h, w], "offset", "bytes"}, ...]}
    then each tensor at ``offset`` (from the end of the header, 8-byte aligned):
      float16: C*h*w values; int8: C float32 per-channel scales then C*h*w int8 (x = q * s[c]).

fp16 for a 1024 px model: 2 MiB + 4 MiB + 2 MiB = 8 MiB per image (SAM's: 2 MiB); int8 half.
"""

import json
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from samapp.ml.embedding import (
    EmbeddingFormat,
    ImageLike,
    dequantize_int8,
    quantize_int8,
    to_rgb_array,
)

MAGIC = b"SAMF"
VERSION = 1
ALIGN = 8
# Decoder input names of the three maps (``sam2_onnx``), in the packed order.
FEATURE_NAMES = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def pack_tensors(arrays: dict[str, np.ndarray], fmt: EmbeddingFormat) -> bytes:
    """Pack (C, h, w) float arrays, in the dict's order, into the layout above."""
    if fmt not in ("fp16", "int8"):
        raise ValueError(f"Unknown embedding format {fmt!r}; use 'fp16' or 'int8'")
    blobs, entries, offset = [], [], 0
    for name, array in arrays.items():
        array = np.asarray(array, dtype=np.float32)
        if fmt == "fp16":
            blob = array.astype("<f2").tobytes()
        else:
            q, scales = quantize_int8(array)
            blob = scales.astype("<f4").tobytes() + q.tobytes()
        entries.append(
            {"name": name, "shape": list(array.shape), "offset": offset, "bytes": len(blob)}
        )
        blobs.append(blob + b"\0" * (_aligned(len(blob)) - len(blob)))
        offset += _aligned(len(blob))
    dtype = "float16" if fmt == "fp16" else "int8"
    header = json.dumps({"dtype": dtype, "tensors": entries}, separators=(",", ":")).encode()
    header += b" " * (_aligned(len(header) + 12) - len(header) - 12)
    return MAGIC + struct.pack("<II", VERSION, len(header)) + header + b"".join(blobs)


def unpack_tensors(data: bytes) -> dict[str, np.ndarray]:
    """Inverse of ``pack_tensors``: name -> (C, h, w) float32 array."""
    if data[:4] != MAGIC:
        raise ValueError("Not a packed feature blob (bad magic)")
    version, length = struct.unpack_from("<II", data, 4)
    if version != VERSION:
        raise ValueError(f"Unsupported packed feature version {version}")
    header = json.loads(data[12 : 12 + length])
    start = 12 + length
    result: dict[str, np.ndarray] = {}
    for entry in header["tensors"]:
        c, h, w = entry["shape"]
        at = start + entry["offset"]
        if header["dtype"] == "float16":
            array = np.frombuffer(data, "<f2", c * h * w, at).astype(np.float32)
        else:
            scales = np.frombuffer(data, "<f4", c, at)
            q = np.frombuffer(data, np.int8, c * h * w, at + 4 * c).reshape(c, h, w)
            array = dequantize_int8(q, scales)
        result[entry["name"]] = array.reshape(c, h, w)
    return result


@dataclass(frozen=True)
class Sam2ImageFeatures:
    """SAM 2's image encoder output for one image (float32, on the model's device).

    Attributes:
      image_embed: (C, s, s), e.g. (256, 64, 64).
      high_res_feats: ((C0, 4s, 4s), (C1, 2s, 2s)), e.g. (32, 256, 256) and (64, 128, 128).
      input_size: (image_size, image_size): SAM 2 resizes to a square without padding.
      original_size: (H, W) of the image as given (after EXIF orientation).
    """

    image_embed: torch.Tensor
    high_res_feats: tuple[torch.Tensor, torch.Tensor]
    input_size: tuple[int, int]
    original_size: tuple[int, int]

    @property
    def embedding(self) -> torch.Tensor:
        """The lowest-resolution map, whose shape the embedding row records."""
        return self.image_embed

    def arrays(self) -> dict[str, np.ndarray]:
        """The three maps as float32 numpy arrays, keyed by decoder input name."""
        tensors = (self.image_embed, *self.high_res_feats)
        return {
            name: t.detach().float().cpu().numpy()
            for name, t in zip(FEATURE_NAMES, tensors, strict=True)
        }

    def to_bytes(self, fmt: EmbeddingFormat = "fp16") -> bytes:
        """The packed blob (module docstring) of the three maps in ``fmt``."""
        return pack_tensors(self.arrays(), fmt)

    @classmethod
    def from_bytes(
        cls, data: bytes, input_size: Sequence[int], original_size: Sequence[int]
    ) -> "Sam2ImageFeatures":
        """Inverse of ``to_bytes`` (float32 on the CPU)."""
        arrays = unpack_tensors(data)
        embed, s0, s1 = (torch.from_numpy(arrays[name].copy()) for name in FEATURE_NAMES)
        return cls(
            image_embed=embed,
            high_res_feats=(s0, s1),
            input_size=(int(input_size[0]), int(input_size[1])),
            original_size=(int(original_size[0]), int(original_size[1])),
        )


def feature_sizes(model: SAM2Base) -> list[tuple[int, int]]:
    """(h, w) of the backbone's three levels, finest first: (256, 256), (128, 128), (64, 64) at
    1024 px. ``SAM2ImagePredictor`` hard-codes these for 1024 px; set from the model instead."""
    side = model.image_size // model.backbone_stride
    return [(4 * side, 4 * side), (2 * side, 2 * side), (side, side)]


# SAM2ImagePredictor runs torch.jit.script on its transforms, which is not thread-safe: threads
# building predictors at once (a worker's or an eager web process's concurrent embeddings and
# segment-everything jobs) fail with "Can't redefine method: forward on class ... Resize" or a
# KeyError from the compiler. Hold it while building anything that builds a predictor.
PREDICTOR_BUILD = threading.Lock()

PredictorT = TypeVar("PredictorT", bound=SAM2ImagePredictor)


def sam2_predictor(
    model: SAM2Base, predictor_class: type[PredictorT] = SAM2ImagePredictor, **kwargs: Any
) -> PredictorT:
    """A ``predictor_class`` on ``model``, whatever its image size (safe from any thread)."""
    with PREDICTOR_BUILD:
        predictor = predictor_class(model, **kwargs)
    predictor._bb_feat_sizes = feature_sizes(model)
    return predictor


@torch.inference_mode()
def compute_sam2_features(
    model: SAM2Base, images: Sequence[ImageLike], batch_size: int = 4
) -> list[Sam2ImageFeatures]:
    """Encode ``images`` in batches of ``batch_size`` with the predictor's own preprocessing.

    On CUDA the encoder runs under fp16 autocast; the returned maps are float32.
    """
    predictor: SAM2ImagePredictor = sam2_predictor(model)
    device = next(model.parameters()).device
    side = (model.image_size, model.image_size)
    results: list[Sam2ImageFeatures] = []
    for start in range(0, len(images), batch_size):
        # Writable copies where needed: the predictor's to_tensor wants them.
        chunk = images[start : start + batch_size]
        arrays = [np.require(to_rgb_array(image), requirements="W") for image in chunk]
        with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            predictor.set_image_batch(arrays)
        features = predictor._features
        embeds = features["image_embed"].float()
        s0, s1 = (f.float() for f in features["high_res_feats"])
        results.extend(
            Sam2ImageFeatures(embeds[i], (s0[i], s1[i]), side, (a.shape[0], a.shape[1]))
            for i, a in enumerate(arrays)
        )
        predictor.reset_predictor()
    return results


def set_sam2_predictor_features(predictor: SAM2ImagePredictor, features: Sam2ImageFeatures) -> None:
    """Make ``predictor`` decode against stored features, as if ``set_image`` had run."""
    dtype = next(predictor.model.sam_mask_decoder.parameters()).dtype
    device = predictor.device
    predictor.reset_predictor()
    predictor._features = {
        "image_embed": features.image_embed.to(device, dtype)[None],
        "high_res_feats": [f.to(device, dtype)[None] for f in features.high_res_feats],
    }
    predictor._orig_hw = [features.original_size]
    predictor._is_image_set = True
