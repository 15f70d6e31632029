"""Mask embeddings and nearest-example labelling for the semi-automatic stage.

A mask's embedding is the image embedding averaged over the mask (on the embedding grid,
weighted by how much of each cell the mask covers), L2-normalised: objects that look alike
to SAM's image encoder get similar vectors, so a proposal can take the label of the most
similar accepted annotations.
"""

from collections.abc import Sequence

import cv2
import numpy as np
from torch import Tensor

from samapp.ml.finetune import masks_to_input_frame


def mask_embedding(
    embedding: Tensor, mask: np.ndarray, img_size: int, stretched: bool = False
) -> np.ndarray | None:
    """The L2-normalised mean of an image embedding under a mask.

    Arguments:
      embedding: (C, h, w) float image embedding of the image.
      mask: (H, W) bool mask in the original frame.
      img_size: the model's input side (``sam.image_encoder.img_size``, SAM 2's
        ``image_size``).
      stretched: the model resizes the image to the square input without keeping its aspect
        (SAM 2): the embedding covers the whole image. Otherwise (SAM) the longest side is
        resized to ``img_size`` and the rest padded.

    Returns:
      (C,) float32, or None when the mask covers nothing at the embedding's resolution.
    """
    channels, h, w = embedding.shape
    if stretched:  # every grid cell is the same share of the image
        frame = np.asarray(mask, bool)
    else:
        frame = masks_to_input_frame(np.asarray(mask, bool)[None], img_size)[0].numpy()
    weights = cv2.resize(frame.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    total = float(weights.sum())
    if total <= 0:
        return None
    features = embedding.float().cpu().numpy().reshape(channels, h * w)
    vector = features @ weights.reshape(h * w) / total
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else None


def nearest_label(
    query: np.ndarray, examples: np.ndarray, labels: Sequence[int], k: int = 5
) -> tuple[int | None, float]:
    """Label a mask embedding by its ``k`` most similar examples.

    Arguments:
      query: (C,) float32 L2-normalised mask embedding.
      examples: (M, C) float32 L2-normalised embeddings of labelled masks.
      labels: (M,) their label ids.

    Returns:
      The label with the largest summed cosine similarity among the ``k`` nearest, and
      the similarity of its nearest example (None, 0.0 without examples).
    """
    if len(examples) == 0:
        return None, 0.0
    similarity = examples @ query
    nearest = np.argsort(-similarity)[:k]
    votes: dict[int, float] = {}
    for index in nearest:
        votes[labels[index]] = votes.get(labels[index], 0.0) + max(0.0, float(similarity[index]))
    best = max(votes, key=lambda label: votes[label])
    top = max(float(similarity[i]) for i in nearest if labels[i] == best)
    return best, top
