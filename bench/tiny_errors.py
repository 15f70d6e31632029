"""Where the committed sam_tiny loses: the held-out evaluation over more clicks, with and
without the previous mask as input, and by object size.

The committed held-out set (``evaluate_sam_tiny``'s: 200 objects of seed 1 000 003, the
centre click first, then a click in the largest error region). Prints the mIoU after each
click in both protocols, the 3- and last-click mIoU per area quartile, and how many objects
end in each IoU band.

    python bench/tiny_errors.py                # 8 clicks
    python bench/tiny_errors.py --clicks 12 --threads 2
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samapp.ml.embedding import compute_embeddings
from samapp.ml.evaluation import HELD_OUT_OBJECTS, HELD_OUT_SEED, evaluate_interactive
from samapp.ml.synthetic import generate_objects
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, build_sam_tiny

BANDS = [(0.0, 0.3), (0.3, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.clicks < 3 or args.threads <= 0:
        parser.error("--clicks must be at least 3 and --threads positive")
    torch.set_num_threads(args.threads)
    sam = build_sam_tiny(SAM_TINY_CHECKPOINT)
    scenes = generate_objects(HELD_OUT_SEED, HELD_OUT_OBJECTS)
    masks = [s.masks for s in scenes]
    embeddings = compute_embeddings(sam, [s.image for s in scenes])
    refined = evaluate_interactive(sam, embeddings, masks, args.clicks)
    alone = evaluate_interactive(sam, embeddings, masks, args.clicks, refine_with_mask=False)

    print("| clicks | " + " | ".join(str(k) for k in range(1, args.clicks + 1)) + " |")
    print("|---" * (args.clicks + 1) + "|")
    for name, result in (("with the previous mask", refined), ("clicks alone", alone)):
        row = " | ".join(f"{result.miou(k):.3f}" for k in range(1, args.clicks + 1))
        print(f"| {name} | {row} |")

    areas = np.concatenate([[int(m.sum()) for m in s.masks] for s in scenes])
    low, high = np.quantile(areas, [0.25, 0.75])
    third, last = refined.ious[:, 2], refined.ious[:, -1]
    print(f"\n| objects by area (px) | count | 3 clicks | {args.clicks} clicks |")
    print("|---|---|---|---|")
    for name, chosen in (
        (f"smallest quarter (< {low:.0f})", areas < low),
        ("middle half", (areas >= low) & (areas < high)),
        (f"largest quarter (>= {high:.0f})", areas >= high),
    ):
        scores = f"{third[chosen].mean():.3f} | {last[chosen].mean():.3f}"
        print(f"| {name} | {chosen.sum()} | {scores} |")

    print(f"\n| IoU after {args.clicks} clicks | objects | median area (px) |")
    print("|---|---|---|")
    for lo, hi in BANDS:
        chosen = (last >= lo) & ((last < hi) if hi < 1.0 else (last <= hi))
        median = f"{np.median(areas[chosen]):.0f}" if chosen.any() else "-"
        print(f"| [{lo}, {hi}{']' if hi == 1.0 else ')'} | {chosen.sum()} | {median} |")


if __name__ == "__main__":
    main()
