"""Calibrate a model's segment-everything defaults on the held-out generated scenes.

Runs the generator once per scene with its filters open (predicted IoU above ``--floor``),
then scores a grid of
(pred_iou_thresh, stability_score_thresh) by filtering those records (NMS ran on the
unfiltered set, so the grid is an estimate), and finally runs the generator for real with
the registry's defaults: the share of scene shapes found at IoU >= 0.8 and the masks kept.

    python bench/automatic_defaults.py --model sam_tiny --scenes 40
"""

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from samapp.ml.evaluation import HELD_OUT_SEED, evaluate_automatic, match_shapes
from samapp.ml.family_ops import automatic_masks
from samapp.ml.masks import rle_to_mask
from samapp.ml.registry import automatic_defaults, load_model
from samapp.ml.synthetic import generate_scene


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sam_tiny")
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument(
        "--floor", type=float, default=0.3, help="predicted-IoU filter of the open run (cost)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    sam = load_model(args.model)
    open_records = []
    for index in range(args.scenes):
        scene = generate_scene(HELD_OUT_SEED, index)
        records = automatic_masks(
            sam,
            scene.image,
            None,
            points_per_side=args.points_per_side,
            pred_iou_thresh=args.floor,
            stability_score_thresh=0.0,
        )
        print(f"scene {index}: {len(records)} candidates", flush=True)
        open_records.append((scene, records, [rle_to_mask(r["segmentation"]) for r in records]))
    shapes = sum(len(s.masks) for s, _, _ in open_records)
    print(f"{args.model}: {args.scenes} scenes, {shapes} shapes")
    print("pred_iou stability recall masks/scene")
    for iou_t, stab_t in itertools.product(
        (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.88), (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
    ):
        found = kept = 0
        for scene, records, masks in open_records:
            keep = [
                m
                for r, m in zip(records, masks, strict=True)
                if r["predicted_iou"] > iou_t and r["stability_score"] >= stab_t and r["area"]
            ]
            found += match_shapes(keep, scene.masks)
            kept += len(keep)
        print(f"{iou_t:8.2f} {stab_t:9.2f} {found / shapes:6.3f} {kept / args.scenes:6.1f}")
    defaults = automatic_defaults(args.model)
    start = time.perf_counter()
    result = evaluate_automatic(
        lambda image: automatic_masks(sam, image, None, **defaults), scenes=args.scenes
    )
    print(
        f"defaults {defaults}: recall@0.8 {result.recall:.3f} ({result.found}/{result.shapes}), "
        f"{result.masks / args.scenes:.1f} masks/scene, {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
