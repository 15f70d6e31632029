"""Segment everything: ours (``samapp.ml.automatic.AutomaticMaskGenerator``) against SAM's
``SamAutomaticMaskGenerator`` on the same model, image and parameters (SAM's defaults: 32x32
point grid, predicted-IoU 0.88, stability 0.95, box NMS 0.7).

    python bench/segment_everything.py [--model sam_tiny] [--images 3] [--size 512]

``sam_tiny`` uses its committed checkpoint when present (real masks), random init otherwise
(then masks are meaningless and the match rate says little). Images are held-out generated
scenes. Both run the encoder (ours batched, SAM's through ``set_image``); ours is also timed
with the image's stored embedding passed in, as the app does. A baseline mask counts as
matched when one of ours overlaps it at IoU >= 0.9. Prints a table and the speed ratio last."""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segment_anything import SamAutomaticMaskGenerator  # noqa: E402

from samapp.ml.automatic import AutomaticMaskGenerator  # noqa: E402
from samapp.ml.embedding import compute_embeddings  # noqa: E402
from samapp.ml.registry import load_model  # noqa: E402
from samapp.ml.synthetic import generate_scene  # noqa: E402
from samapp.ml.tiny import SAM_TINY_CHECKPOINT  # noqa: E402


def match_rate(baseline: list[np.ndarray], ours: list[np.ndarray], threshold: float) -> float:
    """Fraction of ``baseline`` masks with an IoU >= ``threshold`` partner among ``ours``."""
    if not baseline:
        return 1.0
    if not ours:
        return 0.0
    a = np.stack([m.reshape(-1) for m in baseline]).astype(np.float32)
    b = np.stack([m.reshape(-1) for m in ours]).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    return float(((inter / np.maximum(union, 1)).max(1) >= threshold).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam_tiny")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--random-init", action="store_true", help="ignore any checkpoint")
    parser.add_argument("--pred-iou-thresh", type=float, default=0.88, help="SAM's default")
    parser.add_argument("--stability-thresh", type=float, default=0.95, help="SAM's default")
    args = parser.parse_args()
    trained = args.model == "sam_tiny" and SAM_TINY_CHECKPOINT.is_file() and not args.random_init
    torch.manual_seed(0)
    model = load_model(args.model, random_init=not trained)
    params = {
        "points_per_side": args.points_per_side,
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_thresh,
    }
    baseline = SamAutomaticMaskGenerator(model, **params)
    ours = AutomaticMaskGenerator(model, **params)
    scenes = [generate_scene(7_000_001, i, size=args.size) for i in range(args.images)]
    baseline.generate(scenes[0].image)  # warm-up
    ours.generate(scenes[0].image)
    seconds = {"baseline": 0.0, "ours": 0.0, "ours_stored": 0.0, "encoder": 0.0}
    counts = {"baseline": 0, "ours": 0}
    rates = []
    loads = []
    with torch.inference_mode():
        for i, scene in enumerate(scenes):
            runs = [
                ("baseline", lambda s=scene: baseline.generate(s.image)),
                ("ours", lambda s=scene: ours.generate(s.image)),
            ]
            outputs = {}
            for name, fn in runs if i % 2 == 0 else runs[::-1]:
                start = time.perf_counter()
                outputs[name] = fn()
                seconds[name] += time.perf_counter() - start
            start = time.perf_counter()
            embedding = compute_embeddings(model, [scene.image])[0]
            seconds["encoder"] += time.perf_counter() - start
            start = time.perf_counter()
            ours.generate(scene.image, embedding)
            seconds["ours_stored"] += time.perf_counter() - start
            loads.append(os.getloadavg()[0])
            base_masks = [r["segmentation"] for r in outputs["baseline"]]
            our_masks = [mask_utils.decode(r["segmentation"]) for r in outputs["ours"]]
            counts["baseline"] += len(base_masks)
            counts["ours"] += len(our_masks)
            rates.append(match_rate(base_masks, our_masks, 0.9) * len(base_masks))
    matched = sum(rates) / max(1, counts["baseline"])
    n = args.images
    print(
        f"machine: {os.cpu_count()} CPUs, no GPU, torch {torch.__version__}, "
        f"load average {min(loads):.2f}-{max(loads):.2f} during the runs"
    )
    print(
        f"model {args.model} (trained checkpoint: {trained}), {n} scenes {args.size}x{args.size}, "
        f"{args.points_per_side}^2 points, pred IoU > {args.pred_iou_thresh}, stability >= "
        f"{args.stability_thresh}; encoder alone {seconds['encoder'] / n * 1000:.0f} ms"
    )
    print(f"{'path':<44}{'ms/image':>10}{'masks':>7}")
    print(
        f"{'baseline: SamAutomaticMaskGenerator':<44}{seconds['baseline'] / n * 1000:>10.0f}"
        f"{counts['baseline']:>7}"
    )
    print(f"{'ours (encoder included)':<44}{seconds['ours'] / n * 1000:>10.0f}{counts['ours']:>7}")
    print(
        f"{'ours (stored embedding, as the app runs it)':<44}"
        f"{seconds['ours_stored'] / n * 1000:>10.0f}"
    )
    shown = f"{matched:.1%}" if counts["baseline"] else "n/a (baseline found no masks)"
    print(f"baseline masks matched by ours at IoU >= 0.9: {shown}")
    print(
        f"ratio baseline/ours (encoder included): {seconds['baseline'] / seconds['ours']:.2f}x; "
        f"with stored embedding: {seconds['baseline'] / seconds['ours_stored']:.2f}x"
    )


if __name__ == "__main__":
    main()
