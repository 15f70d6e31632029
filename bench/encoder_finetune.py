"""Ablation: what fine-tuning gains on the unseen "novel" style, decoder only vs encoder.

The same data as the engine's acceptance test (``tests/model_versions/test_acceptance.py``): 48
generated "novel" scenes of stream 77 (stars, rings and crosses with checkerboard and dot
textures), the held-out split a pure function of each PNG's sha256 (25 %), the committed
``sam_tiny`` as the base. Each variant fine-tunes from the base with the job's own code
(``samapp.ml.finetune.finetune``) and is evaluated as the job evaluates (SAM's predictor,
the centre click first, then corrective clicks), with the weights as a version stores
them (fp16, LoRA merged). Prints the table and the gain of each variant over the base.

    python bench/encoder_finetune.py                    # every variant
    python bench/encoder_finetune.py --only lora_all_r8 --threads 2
"""

import argparse
import copy
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samapp.ml.embedding import compute_embeddings
from samapp.ml.evaluation import evaluate_interactive
from samapp.ml.finetune import (
    FinetuneConfig,
    apply_trained_state,
    evaluate_embeddings,
    finetune,
    make_image_sample,
    make_sample,
)
from samapp.ml.synthetic import generate_scene
from samapp.ml.tiny import SAM_TINY_CHECKPOINT, build_sam_tiny

IMAGES, SEED, HELD_OUT_PERCENT = 48, 77, 25
# A larger held-out set of the same style (another stream): the test's split holds 5 images.
EXTRA_SEED, EXTRA_IMAGES = 1077, 40
# The acceptance test's job options.
JOB = {"steps": 200, "images_per_step": 4, "iterations": 2, "lr": 3e-3}
VARIANTS: dict[str, dict[str, object]] = {
    "decoder": {},
    "decoder_prompt": {"train_prompt_encoder": True},
    "lora_all_r4": {"encoder_mode": "lora", "encoder_rank": 4},
    "lora_all_r8": {"encoder_mode": "lora", "encoder_rank": 8},
    "lora_only_r8": {"encoder_mode": "lora", "encoder_rank": 8, "decoder_lr_scale": 0.0},
    "lora_last2_r8": {"encoder_mode": "lora", "encoder_rank": 8, "encoder_blocks": 2},
    "blocks_last1": {"encoder_mode": "blocks", "encoder_blocks": 1, "encoder_lr_scale": 0.3},
    "blocks_last2": {"encoder_mode": "blocks", "encoder_blocks": 2, "encoder_lr_scale": 0.3},
    "blocks_all": {"encoder_mode": "blocks", "encoder_lr_scale": 0.3},
    # The encoder modes paste objects between the step's images by default (copy_paste 2).
    "blocks_all_no_paste": {"encoder_mode": "blocks", "encoder_lr_scale": 0.3, "copy_paste": 0},
    "lora_all_r8_no_paste": {"encoder_mode": "lora", "encoder_rank": 8, "copy_paste": 0},
}


def held_out(image: np.ndarray) -> bool:
    """The service's split (``image_is_held_out``) on the PNG the test fixture stores."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return int(hashlib.sha256(buffer.getvalue()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=int(JOB["steps"]))
    parser.add_argument("--lr", type=float, default=float(JOB["lr"]))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scenes = [generate_scene(SEED, i, "novel") for i in range(IMAGES)]
    train = [s for s in scenes if not held_out(s.image)]
    test = [s for s in scenes if held_out(s.image)]
    base = build_sam_tiny(SAM_TINY_CHECKPOINT)
    test_embeddings = compute_embeddings(base, [s.image for s in test])
    before = evaluate_embeddings(base, test_embeddings, [s.masks for s in test], clicks=5)
    print(f"train {len(train)} images, held-out {len(test)} images / {before['objects']} objects")
    extra = [generate_scene(EXTRA_SEED, i, "novel") for i in range(EXTRA_IMAGES)]

    def extra_miou(model: torch.nn.Module) -> float:
        embeddings = compute_embeddings(model, [s.image for s in extra])  # type: ignore[arg-type]
        return float(evaluate_embeddings(model, embeddings, [s.masks for s in extra], 1)["miou_1"])  # type: ignore[arg-type]

    extra_before = extra_miou(base)
    extra_embeddings = compute_embeddings(base, [s.image for s in extra])
    oracle = evaluate_interactive(base, extra_embeddings, [s.masks for s in extra], clicks=1)
    # What a perfect choice among the base's outputs would give: a bound on decoder-side gains.
    print(
        f"sam_tiny on the extra set, 1 click: shown {oracle.miou(1):.4f}, "
        f"best of its 4 outputs {oracle.oracle_miou(1):.4f}"
    )
    print(
        f"{'variant':16} {'seed':>4} {'miou_1':>7} {'gain':>7} {'miou_3':>7} "
        f"{'extra_1':>7} {'gain':>7} {'seconds':>8}"
    )
    print(
        f"{'sam_tiny':16} {'':>4} {before['miou_1']:7.4f} {'':>7} {before['miou_3']:7.4f} "
        f"{extra_before:7.4f}"
    )
    train_embeddings = compute_embeddings(base, [s.image for s in train])
    for name in args.only:
        for seed in args.seeds:
            options = {**JOB, "steps": args.steps, "lr": args.lr, **VARIANTS[name], "seed": seed}
            config = FinetuneConfig.from_options(options)
            if config.trains_encoder:
                samples = [make_image_sample(base, s.image, s.masks) for s in train]
            else:
                samples = [
                    make_sample(e, s.masks, base.image_encoder.img_size)
                    for e, s in zip(train_embeddings, train, strict=True)
                ]
            started = time.monotonic()
            result = finetune(base, samples, config)
            seconds = time.monotonic() - started
            trained = apply_trained_state(copy.deepcopy(base), result.state_dict).eval()
            embeddings = compute_embeddings(trained, [s.image for s in test])
            after = evaluate_embeddings(trained, embeddings, [s.masks for s in test], clicks=5)
            gain = after["miou_1"] - before["miou_1"]
            extra_after = extra_miou(trained)
            print(
                f"{name:16} {seed:4d} {after['miou_1']:7.4f} {gain:+7.4f} "
                f"{after['miou_3']:7.4f} {extra_after:7.4f} {extra_after - extra_before:+7.4f} "
                f"{seconds:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
