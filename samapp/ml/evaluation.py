"""Interactive evaluation of a SAM model: mIoU after k simulated clicks and NoC.

The first click is the ground truth's interior point farthest from its boundary (the
maximum of the distance transform; ``random_click`` puts it anywhere on the object
instead); each next click is at the centre (distance transform maximum) of the largest
error region, positive on a false negative and negative on a false positive. The
evaluated mask is the one SAM itself would show: the IoU head's pick among the three
multimask outputs for the first click, then the single-mask output with the previous
low-res logits as mask prompt. The oracle is the best IoU among all outputs (three
multimask and the single mask) for the same prompts.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from segment_anything import SamPredictor

from samapp.ml.embedding import ImageEmbedding, compute_embeddings, set_predictor_embedding
from samapp.ml.registry import AnySam
from samapp.ml.sam2_adapter import Sam2Clicks
from samapp.ml.sam2_embedding import (
    Sam2ImageFeatures,
    compute_sam2_features,
    sam2_predictor,
    set_sam2_predictor_features,
)
from samapp.ml.sam2_models import is_sam2
from samapp.ml.synthetic import generate_objects

HELD_OUT_SEED = 1_000_003  # never used for training
HELD_OUT_OBJECTS = 200


@dataclass(frozen=True)
class InteractiveResult:
    """Per-object IoUs along the simulated clicks.

    Attributes:
      ious: (num_objects, clicks) float64, IoU of the shown mask after each click.
      oracle_ious: (num_objects, clicks) float64, best IoU among all outputs.
    """

    ious: np.ndarray
    oracle_ious: np.ndarray

    def miou(self, clicks: int) -> float:
        """Mean IoU of the shown masks after ``clicks`` clicks (1-based)."""
        return float(self.ious[:, clicks - 1].mean())

    def oracle_miou(self, clicks: int) -> float:
        """Mean best-of-outputs IoU after ``clicks`` clicks (1-based)."""
        return float(self.oracle_ious[:, clicks - 1].mean())

    def noc(self, threshold: float) -> float:
        """Mean number of clicks to reach ``threshold`` IoU, counting the evaluated
        number of clicks for objects that never reach it."""
        reached = self.ious >= threshold
        first = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, self.ious.shape[1])
        return float(first.mean())


def _centre(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the maximum of the distance transform of an (H, W) bool region, the
    image border counting as outside."""
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return int(x), int(y)


def first_click(gt: np.ndarray) -> tuple[int, int]:
    """(x, y) of the interior point of (H, W) bool ``gt`` farthest from its boundary."""
    return _centre(gt)


def random_click(gt: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """(x, y) of a pixel of (H, W) bool ``gt`` drawn uniformly by ``rng``: a user who
    clicks anywhere on the object, its edges included."""
    ys, xs = np.nonzero(gt)
    index = int(rng.integers(len(xs)))
    return int(xs[index]), int(ys[index])


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], int]:
    """The corrective click for (H, W) bool ``pred`` against (H, W) bool ``gt``.

    Returns ((x, y), label): the centre of the largest connected error region, label 1
    when it is a false negative, 0 when a false positive, -1 (no click) when exact.
    """
    best_area, best = 0, ((0, 0), -1)
    for label, error in ((1, gt & ~pred), (0, pred & ~gt)):
        count, components, stats, _ = cv2.connectedComponentsWithStats(
            error.astype(np.uint8), connectivity=8
        )
        if count > 1:
            largest = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            area = int(stats[largest, cv2.CC_STAT_AREA])
            if area > best_area:
                best_area, best = area, (_centre(components == largest), label)
    return best


def _ious(masks: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of (N, M, H, W) bool masks with (N, H, W) bool gt: (N, M) float64."""
    inter = (masks & gt[:, None]).sum(axis=(2, 3))
    union = (masks | gt[:, None]).sum(axis=(2, 3))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _set_images(
    sam: AnySam, images: Sequence[np.ndarray | ImageEmbedding | Sam2ImageFeatures]
) -> Iterator[Any]:
    """Per image, a ``SamPredictor`` (or, for SAM 2, ``Sam2Clicks`` over a
    ``SAM2ImagePredictor``) with that image set: encoded, or its stored features."""
    sam2 = is_sam2(sam)
    predictor: Any = sam2_predictor(sam.eval()) if sam2 else SamPredictor(sam.eval())
    for image in images:
        if isinstance(image, Sam2ImageFeatures):
            set_sam2_predictor_features(predictor, image)
        elif isinstance(image, ImageEmbedding):
            set_predictor_embedding(predictor, image)
        else:
            predictor.set_image(image)
        yield Sam2Clicks(predictor) if sam2 else predictor


def evaluate_interactive(
    sam: AnySam,
    images: Sequence[np.ndarray | ImageEmbedding | Sam2ImageFeatures],
    gt_masks: Sequence[Sequence[np.ndarray]],
    clicks: int = 3,
    first_click_rng: np.random.Generator | None = None,
    refine_with_mask: bool = True,
) -> InteractiveResult:
    """Simulate ``clicks`` clicks on every object through ``SamPredictor`` (SAM 2:
    ``SAM2ImagePredictor``).

    Arguments:
      sam: SAM's ``Sam`` or SAM 2's ``SAM2Base``.
      images: (H, W, 3) uint8 RGB images, or their precomputed ``ImageEmbedding``s (SAM 2:
        ``Sam2ImageFeatures``; the stored features a fine-tuned decoder is evaluated on,
        the image encoder is not run).
      gt_masks: per image, its objects' (H, W) bool masks (all objects of an image are
        prompted as one batch).
      clicks: number of clicks per object, >= 1.
      first_click_rng: when given, each object's first click is ``random_click`` from
        this generator instead of the mask's centre.
      refine_with_mask: give each click after the first the previous shown mask's low-res
        logits as mask input (SAM's interactive protocol); False sends the clicks alone.

    Returns:
      The per-object IoUs, objects in the order given.
    """
    ious, oracle = [], []
    with torch.inference_mode():
        for predictor, masks in zip(_set_images(sam, images), gt_masks, strict=True):
            image_ious, image_oracle = _click_through(
                predictor, np.stack(masks), clicks, first_click_rng, refine_with_mask
            )
            ious.append(image_ious)
            oracle.append(image_oracle)
    return InteractiveResult(np.concatenate(ious), np.concatenate(oracle))


def _click_through(
    predictor: SamPredictor,
    gt: np.ndarray,
    clicks: int,
    first_click_rng: np.random.Generator | None,
    refine_with_mask: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Click ``clicks`` times on each of the (N, H, W) bool ``gt`` masks of the image set
    in ``predictor``; returns (N, clicks) float64 shown and oracle IoUs."""
    threshold = predictor.model.mask_threshold
    rows = np.arange(len(gt))
    points = [
        [first_click(m) if first_click_rng is None else random_click(m, first_click_rng)]
        for m in gt
    ]
    labels = [[1] for _ in gt]
    mask_input = None
    ious = np.zeros((len(gt), clicks))
    oracle = np.zeros((len(gt), clicks))
    for click in range(clicks):
        outputs = [_predict(predictor, points, labels, mask_input, multimask=True)]
        if click:
            outputs.append(_predict(predictor, points, labels, mask_input, multimask=False))
        logits, scores, low_res = outputs[-1]
        picked = scores.argmax(axis=1)
        shown = logits[rows, picked] > threshold
        ious[:, click] = _ious(shown[:, None], gt)[:, 0]
        every = np.concatenate([output[0] for output in outputs], axis=1) > threshold
        oracle[:, click] = _ious(every, gt).max(axis=1)
        if refine_with_mask:
            mask_input = low_res[rows, picked][:, None]
        for i in rows:
            point, label = next_click(shown[i], gt[i])
            points[i].append(point)
            labels[i].append(label)
    return ious, oracle


def _predict(
    predictor: SamPredictor,
    points: list[list[tuple[int, int]]],
    labels: list[list[int]],
    mask_input: np.ndarray | None,
    multimask: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched ``predict_torch`` for N objects with K clicks each (original-image xy).

    Returns (N, M, H, W) float32 logits at the original size, (N, M) float32 predicted
    IoUs and (N, M, 4h, 4w) float32 low-res logits; M = 3 if ``multimask`` else 1.
    """
    device = predictor.device
    coords = predictor.transform.apply_coords(
        np.asarray(points, np.float32), predictor.original_size
    )
    logits, scores, low_res = predictor.predict_torch(
        point_coords=torch.as_tensor(coords, dtype=torch.float32, device=device),
        point_labels=torch.as_tensor(labels, dtype=torch.int64, device=device),
        mask_input=None if mask_input is None else torch.as_tensor(mask_input, device=device),
        multimask_output=multimask,
        return_logits=True,
    )
    return logits.cpu().numpy(), scores.cpu().numpy(), low_res.cpu().numpy()


def evaluate_sam_tiny(
    sam: AnySam, objects: int = HELD_OUT_OBJECTS, clicks: int = 20
) -> dict[str, float | int]:
    """Interactive metrics of ``sam`` (a ``Sam`` or a ``SAM2Base``) on the held-out
    generated set (``HELD_OUT_SEED``).

    Returns mIoU after 1 and 3 clicks (shown mask and oracle), NoC@85 and NoC@90 over
    ``clicks`` clicks, the numbers of objects and clicks, and the 1-click mIoU when the
    click lands anywhere on the object (``random_click``, seeded).
    """
    scenes = generate_objects(HELD_OUT_SEED, objects)
    masks = [s.masks for s in scenes]
    encode = compute_sam2_features if is_sam2(sam) else compute_embeddings
    embeddings = encode(sam, [s.image for s in scenes])  # once, for both runs
    result = evaluate_interactive(sam, embeddings, masks, clicks)
    anywhere = evaluate_interactive(
        sam, embeddings, masks, clicks=1, first_click_rng=np.random.default_rng(HELD_OUT_SEED)
    )
    return {
        "held_out_seed": HELD_OUT_SEED,
        "objects": objects,
        "clicks": clicks,
        "miou_1_click": round(result.miou(1), 4),
        "miou_3_clicks": round(result.miou(3), 4),
        "miou_1_click_anywhere": round(anywhere.miou(1), 4),
        "oracle_miou_1_click": round(result.oracle_miou(1), 4),
        "oracle_miou_3_clicks": round(result.oracle_miou(3), 4),
        "noc_85": round(result.noc(0.85), 2),
        "noc_90": round(result.noc(0.90), 2),
    }


@dataclass(frozen=True)
class AutomaticResult:
    """Segment-everything on generated scenes.

    Attributes:
      shapes: ground-truth shapes in the scenes.
      found: shapes matched by at least one kept mask at IoU >= ``iou``.
      masks: masks the generator kept, over all scenes.
      iou: the matching threshold.
    """

    shapes: int
    found: int
    masks: int
    iou: float

    @property
    def recall(self) -> float:
        return self.found / self.shapes if self.shapes else 0.0


def match_shapes(
    predicted: Sequence[np.ndarray], shapes: Sequence[np.ndarray], iou: float = 0.8
) -> int:
    """How many of ``shapes`` some mask of ``predicted`` covers at IoU >= ``iou``."""
    if not predicted or not shapes:
        return 0
    stacked = np.stack([p.astype(bool) for p in predicted])
    return sum(int(_ious(stacked[None], gt.astype(bool)[None]).max() >= iou) for gt in shapes)


def evaluate_automatic(
    generate: Callable[[np.ndarray], list[dict[str, Any]]],
    scenes: int = 40,
    iou: float = 0.8,
    seed: int = HELD_OUT_SEED,
) -> AutomaticResult:
    """Share of the held-out scenes' shapes that a segment-everything ``generate`` finds at
    IoU >= ``iou``. ``generate`` maps a scene's (H, W, 3) uint8 image to its generator's records
    (COCO RLE ``segmentation``), e.g. ``family_ops.automatic_masks`` with chosen options."""
    from samapp.ml.masks import rle_to_mask
    from samapp.ml.synthetic import generate_scene

    shapes = found = kept = 0
    for index in range(scenes):
        scene = generate_scene(seed, index)
        records = generate(scene.image)
        predicted = [rle_to_mask(r["segmentation"]) for r in records]
        shapes += len(scene.masks)
        found += match_shapes(predicted, scene.masks, iou)
        kept += len(records)
    return AutomaticResult(shapes=shapes, found=found, masks=kept, iou=iou)
