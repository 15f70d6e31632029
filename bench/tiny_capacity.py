"""Ablation: does sam_tiny lack capacity or resolution? Its recipe at a short schedule, the
committed size against a deeper and a wider image encoder and a 256 px input.

Each variant trains from the same seed with the committed recipe (``TrainConfig``, only the
number of steps shortened) through the project's own loop (``samapp.ml.training.train``) and
is evaluated on the committed held-out set (``evaluate_sam_tiny``: 200 objects of seed
1 000 003, the centre click first, then corrective clicks). The variants run one after
another in this process, so their seconds compare on a quiet machine only; the mIoU figures
are deterministic for a given torch build and thread count.

    python bench/tiny_capacity.py                       # every variant, 1500 steps
    python bench/tiny_capacity.py --only base depth8 --steps 3000 --threads 2
"""

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samapp.ml.evaluation import evaluate_sam_tiny
from samapp.ml.tiny import SAM_TINY_CONFIG, build_sam_tiny
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import init_decoder_attention, train

# Encoder changes from the committed dimensions; the prompt encoder and decoder stay as they are.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "depth8": {"encoder_depth": 8, "encoder_global_attn_indexes": (3, 7)},
    "wide128": {"encoder_embed_dim": 128, "encoder_num_heads": 4},
    # The generated scenes' own 256 px: a 32x32 embedding, windows of 8 (4x4 of them as at 192).
    "res256": {"img_size": 256, "encoder_window_size": 8},
}


def run(name: str, steps: int, work_dir: Path) -> dict[str, Any]:
    """Train variant ``name`` for ``steps`` steps from seed 0; its held-out metrics."""
    config = TrainConfig(steps=steps)
    torch.manual_seed(config.seed)
    model = build_sam_tiny(None, replace(SAM_TINY_CONFIG, **VARIANTS[name]))
    init_decoder_attention(model, config.attention_init_gain)
    started = time.perf_counter()
    train(model, config, work_dir / f"{name}.state.pt", progress=False)
    seconds = time.perf_counter() - started
    model.eval()
    metrics = evaluate_sam_tiny(model)
    return {
        "variant": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(seconds),
        **metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.steps <= 0 or args.threads <= 0:
        parser.error("--steps and --threads must be positive")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print("| variant | parameters | 1 click | 3 clicks | NoC@90 | training s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.only:
            m = run(name, args.steps, Path(work_dir))
            print(
                f"| {name} | {m['parameters']:,} | {m['miou_1_click']:.4f} | "
                f"{m['miou_3_clicks']:.4f} | {m['noc_90']:.2f} | {m['seconds']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
