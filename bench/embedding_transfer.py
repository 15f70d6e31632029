"""Embedding transfer: bytes per image and browser decode time for fp32 (the official demo's raw
float32 ``.npy``, the baseline), fp16 (our default) and int8 (per-channel scales), plus the mask
agreement of each against fp32 through SAM's fp32 torch decoder.

    python bench/embedding_transfer.py [--clicks 20]

Embeddings: SAM ViT-B (random init) on one generated image, and ``sam_tiny`` (committed
checkpoint when present) on its held-out generated scenes. Decode runs in headless Debian
Chromium on the ViT-B embedding (256x64x64). Prints a table and the fp32/ours byte ratio last."""

import argparse
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from browser.harness import ensure_frontend_modules, run_page, serve  # noqa: E402

from samapp.ml.embedding import ImageEmbedding, compute_embeddings  # noqa: E402
from samapp.ml.onnx_export import SamOnnxLowRes  # noqa: E402
from samapp.ml.registry import load_model  # noqa: E402
from samapp.ml.synthetic import generate_scene  # noqa: E402
from samapp.ml.tiny import SAM_TINY_CHECKPOINT  # noqa: E402

FORMATS = ("fp16", "int8")


def npy_bytes(array: np.ndarray) -> bytes:
    """What the official demo downloads: ``np.save`` of the (1, C, h, w) float32 embedding."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array[None].astype(np.float32))
    return buffer.getvalue()


def mask_ious(model, embedding: ImageEmbedding, clicks: int, seed: int) -> dict[str, list[float]]:
    """IoU of thresholded low-res masks: decoded fp16/int8 embedding vs the fp32 one."""
    decoder = SamOnnxLowRes(model, return_single_mask=True)
    h, w = model.prompt_encoder.image_embedding_size
    rng = np.random.default_rng(seed)
    shape = tuple(embedding.embedding.shape)
    variants = {
        fmt: ImageEmbedding.from_bytes(
            embedding.to_bytes(fmt), shape, embedding.input_size, embedding.original_size, fmt
        ).embedding
        for fmt in FORMATS
    }
    ious: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    side = model.image_encoder.img_size
    with torch.no_grad():
        for _ in range(clicks):
            coords = torch.tensor([[[*rng.uniform(0, side, 2)], [0.0, 0.0]]], dtype=torch.float32)
            labels = torch.tensor([[1.0, -1.0]])
            extra = (torch.zeros(1, 1, 4 * h, 4 * w), torch.zeros(1))
            ref = decoder(embedding.embedding[None], coords, labels, *extra)[1] > 0
            for fmt, tensor in variants.items():
                masks = decoder(tensor[None], coords, labels, *extra)[1] > 0
                union = (ref | masks).sum().item()
                ious[fmt].append(1.0 if union == 0 else (ref & masks).sum().item() / union)
    return ious


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--tiny-scenes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    ensure_frontend_modules()

    torch.manual_seed(0)
    vit_b = load_model("sam_vit_b", random_init=True)
    scene = generate_scene(0, 0, size=512)
    vit_emb = compute_embeddings(vit_b, [scene.image])[0]
    ious = mask_ious(vit_b, vit_emb, args.clicks, seed=0)
    trained = SAM_TINY_CHECKPOINT.is_file()
    torch.manual_seed(0)
    tiny = load_model("sam_tiny", random_init=not trained)
    scenes = [generate_scene(7_000_001, i, size=tiny.image_encoder.img_size) for i in range(10)]
    tiny_ious: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for i, emb in enumerate(
        compute_embeddings(tiny, [s.image for s in scenes[: args.tiny_scenes]])
    ):
        for fmt, values in mask_ious(tiny, emb, max(2, args.clicks // 4), seed=i).items():
            tiny_ious[fmt].extend(values)

    array = vit_emb.embedding.numpy()
    payloads = {"fp32": npy_bytes(array)} | {fmt: vit_emb.to_bytes(fmt) for fmt in FORMATS}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = {}
        for fmt, data in payloads.items():
            name = f"embedding.{fmt}.bin"
            # The page decodes raw float32 for fp32: strip the npy header (sizes still count it).
            (out / name).write_bytes(array.astype("<f4").tobytes() if fmt == "fp32" else data)
            files[fmt] = name
        config = {"shape": list(array.shape), "files": files, "repeats": args.repeats}
        (out / "transfer.json").write_text(json.dumps(config))
        with serve(out) as base:
            result = run_page(f"{base}/bench/transfer.html")

    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at end; "
        f"{result['user_agent'].split(') ')[-1]}"
    )
    print(
        f"ViT-B embedding {tuple(array.shape)}; mask IoU vs fp32 embedding, SAM torch decoder: "
        f"ViT-B random init ({args.clicks} clicks), sam_tiny trained={trained} "
        f"({len(tiny_ious['fp16'])} clicks)"
    )
    print(
        f"{'format':<13}{'bytes':>10}{'gzip -6':>10}{'decode p50 ms':>15}{'max|diff|':>11}"
        f"{'IoU ViT-B mean/min':>20}{'IoU tiny mean/min':>19}"
    )
    rows = [("fp32", "fp32"), ("fp16", "fp16_native"), ("fp16", "fp16_table"), ("int8", "int8")]
    for fmt, decoder in rows:
        if decoder not in result["decode_ms"]:
            continue
        data = payloads[fmt]
        iou_b = f"{np.mean(ious[fmt]):.4f}/{np.min(ious[fmt]):.4f}" if fmt in ious else "1 (ref)"
        iou_t = (
            f"{np.mean(tiny_ious[fmt]):.4f}/{np.min(tiny_ious[fmt]):.4f}"
            if fmt in tiny_ious
            else "1 (ref)"
        )
        print(
            f"{decoder:<13}{len(data):>10}{len(gzip.compress(data, 6)):>10}"
            f"{result['decode_ms'][decoder]['p50']:>15.2f}{result['max_abs_diff'][decoder]:>11.2e}"
            f"{iou_b:>20}{iou_t:>19}"
        )
    fp32 = len(payloads["fp32"])
    print(
        f"ratio fp32/fp16 bytes: {fp32 / len(payloads['fp16']):.2f}x, "
        f"fp32/int8 bytes: {fp32 / len(payloads['int8']):.2f}x"
    )


if __name__ == "__main__":
    main()
