"""SAM 2.1 beside SAM on a worker: encoder images/s, stored bytes per image, mask agreement of
the stored forms, and the browser graph's agreement with ``SAM2ImagePredictor``.

    python bench/sam2_figures.py [--images 2] [--models sam2.1_hiera_tiny,sam_vit_b,mobile_sam]
                                 [--device auto] [--clicks 24]

Random-init weights (no checkpoint is downloadable here), the same generated 480x640 photos for
every model, models timed in turn round-robin image by image (``compute_sam2_features`` /
``compute_embeddings``, batch 1, one warm-up image each). Bytes are the stored fp16 and int8
blobs of one image. Mask agreement (Hiera-T): masks decoded by the package's predictor from the
fp16 and int8 forms against those from the fp32 features, every candidate of ``--clicks``
random single clicks; then the exported fp32 ONNX decoder (native onnxruntime) against the
predictor on the same clicks. Prints tables, the SAM-vs-SAM 2 ratios last."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samapp.ml.embedding import compute_embeddings  # noqa: E402
from samapp.ml.registry import MODELS, load_model, resolve_device  # noqa: E402
from samapp.ml.sam2_embedding import (  # noqa: E402
    Sam2ImageFeatures,
    compute_sam2_features,
    sam2_predictor,
    set_sam2_predictor_features,
)
from samapp.ml.sam2_onnx import export_sam2_decoder, run_onnx  # noqa: E402
from samapp.ml.synthetic import generate_scene  # noqa: E402

SAM2 = "sam2.1_hiera_tiny"


def photos(count: int) -> list[np.ndarray]:
    """Generated scenes resized to 480x640 (a camera's aspect ratio)."""
    from PIL import Image

    return [
        np.asarray(Image.fromarray(generate_scene(i, 0, size=512).image).resize((640, 480)))
        for i in range(count)
    ]


def encode(model, name: str, images: list[np.ndarray]):  # type: ignore[no-untyped-def]
    if MODELS[name].family == "sam2":
        return compute_sam2_features(model, images, batch_size=1)
    return compute_embeddings(model, images, batch_size=1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def agreement(model, features: Sam2ImageFeatures, clicks: int) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Mean/min IoU of every candidate mask: stored forms vs fp32 features, ONNX vs torch."""
    h, w = features.original_size
    rng = np.random.default_rng(0)
    points = [rng.uniform((0, 0), (w, h))[None] for _ in range(clicks)]
    predictor = sam2_predictor(model)

    def masks(f: Sam2ImageFeatures) -> list[np.ndarray]:
        set_sam2_predictor_features(predictor, f)
        return [predictor.predict(p, np.array([1]))[2] > 0 for p in points]

    exact = masks(features)
    out: dict[str, tuple[float, float]] = {}
    for fmt in ("fp16", "int8"):
        stored = Sam2ImageFeatures.from_bytes(features.to_bytes(fmt), (1024, 1024), (h, w))
        values = [
            iou(a, b)
            for m, n in zip(exact, masks(stored), strict=True)
            for a, b in zip(m, n, strict=True)
        ]
        out[fmt] = (float(np.mean(values)), float(np.min(values)))
    with tempfile.TemporaryDirectory() as tmp:
        session = ort.InferenceSession(str(export_sam2_decoder(model, Path(tmp) / "d.onnx")))
        values = []
        for p, m in zip(points, exact, strict=True):
            coords = torch.from_numpy(p * np.array([1024 / w, 1024 / h])).float()[None]
            inputs = {
                "image_embeddings": features.image_embed[None],
                "high_res_feats_0": features.high_res_feats[0][None],
                "high_res_feats_1": features.high_res_feats[1][None],
                "point_coords": coords,
                "point_labels": torch.ones(1, 1),
                "mask_input": torch.zeros(1, 1, 256, 256),
                "has_mask_input": torch.zeros(1),
            }
            low = run_onnx(session, inputs)[1][0, 1:] > 0
            values += [iou(a, b) for a, b in zip(m, low, strict=True)]
        out["onnx fp32"] = (float(np.mean(values)), float(np.min(values)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--models", default=f"{SAM2},sam_vit_b,mobile_sam")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clicks", type=int, default=24)
    args = parser.parse_args()
    device = resolve_device(args.device)
    names = args.models.split(",")
    data = photos(args.images)
    torch.manual_seed(0)
    models = {name: load_model(name, device=device, random_init=True) for name in names}
    for name in names:  # warm-up: allocator, kernels
        encode(models[name], name, data[:1])
    seconds = {name: 0.0 for name in names}
    results: dict[str, list] = {name: [] for name in names}
    for image in data:
        for name in names:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] += encode(models[name], name, [image])
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name] += time.perf_counter() - start
    print(
        f"machine: {os.cpu_count()} CPUs, device {device}, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}; "
        f"{args.images} images 480x640, random init"
    )
    print(f"{'model':<24}{'img/s':>8}{'s/img':>8}{'fp16 bytes':>12}{'int8 bytes':>12}")
    for name in names:
        first = results[name][0]
        fp16, int8 = len(first.to_bytes("fp16")), len(first.to_bytes("int8"))
        rate = args.images / seconds[name]
        print(f"{name:<24}{rate:8.3f}{1 / rate:8.2f}{fp16:12,d}{int8:12,d}")
    if SAM2 in names:
        features = results[SAM2][0]
        model = models[SAM2].cpu().float()
        features = Sam2ImageFeatures(
            features.image_embed.cpu(),
            (features.high_res_feats[0].cpu(), features.high_res_feats[1].cpu()),
            features.input_size,
            features.original_size,
        )
        print(f"{SAM2} mask IoU, every candidate of {args.clicks} clicks (mean / min):")
        for form, (mean, low) in agreement(model, features, args.clicks).items():
            print(f"  {form:<10} {mean:.4f} / {low:.4f}")
    for name in names:
        if name != SAM2 and SAM2 in names:
            ratio = (args.images / seconds[SAM2]) / (args.images / seconds[name])
            print(f"images/s {SAM2} / {name}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
