"""Embedding throughput per worker: a loop of ``SamPredictor.set_image`` (baseline, SAM's own
path) against ours (``compute_embeddings``: batched, ``torch.inference_mode``, SDPA attention
patched in by ``samapp.ml.fast_encoder``) on the same model weights and the same images.

    python bench/embedding_throughput.py [--model sam_vit_b] [--images 4] [--batch-size 2]

Random-init weights (no checkpoint is downloadable here). Baseline and ours alternate round by
round; the embeddings are compared (max abs difference). On a CUDA machine, ours also runs under
fp16 autocast (``compute_embeddings`` does that) and the table says which device ran it.
Prints images/s for each and the ratio last."""

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segment_anything import SamPredictor  # noqa: E402

from samapp.ml.embedding import compute_embeddings  # noqa: E402
from samapp.ml.fast_encoder import use_sdpa_attention  # noqa: E402
from samapp.ml.registry import load_model, resolve_device  # noqa: E402


def images(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` deterministic 480x640 RGB uint8 images (a common camera aspect ratio)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return [np.roll(base, 37 * i, axis=1) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam_vit_b")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    baseline_model = load_model(args.model, device=device, random_init=True)
    ours_model = use_sdpa_attention(copy.deepcopy(baseline_model))
    data = images(args.images)
    predictor = SamPredictor(baseline_model)

    def baseline() -> list[torch.Tensor]:
        out = []
        for image in data:
            predictor.set_image(image)
            out.append(predictor.get_image_embedding()[0])
        return out

    def ours() -> list[torch.Tensor]:
        return [e.embedding for e in compute_embeddings(ours_model, data, args.batch_size)]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Warm-up (allocator, kernels), one image each.
    predictor.set_image(data[0])
    compute_embeddings(ours_model, data[:1], 1)
    seconds: dict[str, list[float]] = {"baseline": [], "ours": []}
    results: dict[str, list[torch.Tensor]] = {}
    loads = []
    for r in range(args.rounds):
        order = [("baseline", baseline), ("ours", ours)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            sync()
            start = time.perf_counter()
            results[name] = fn()
            sync()
            seconds[name].append(time.perf_counter() - start)
            loads.append(os.getloadavg()[0])
    diff = max(
        (a.float() - b.float()).abs().max().item()
        for a, b in zip(results["baseline"], results["ours"], strict=True)
    )
    scale = max(a.abs().max().item() for a in results["baseline"])
    rate = {name: args.images / min(values) for name, values in seconds.items()}
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "no GPU"
    print(
        f"machine: {device} ({gpu}),"
        f" {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads,"
        f" load average {min(loads):.2f}-{max(loads):.2f} during the runs"
    )
    print(f"model {args.model} (random init), {args.images} images 480x640, best of {args.rounds}")
    print(f"{'path':<44}{'s total':>9}{'img/s':>8}")
    print(
        f"{'baseline: SamPredictor.set_image loop':<44}{min(seconds['baseline']):9.2f}"
        f"{rate['baseline']:8.3f}"
    )
    print(
        f"{f'ours: compute_embeddings batch {args.batch_size} + SDPA':<44}"
        f"{min(seconds['ours']):9.2f}{rate['ours']:8.3f}"
    )
    print(f"max |ours - baseline| = {diff:.2e} (embedding max |x| {scale:.2f})")
    print(f"ratio ours/baseline images/s: {rate['ours'] / rate['baseline']:.2f}x")


if __name__ == "__main__":
    main()
