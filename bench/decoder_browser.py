"""Click -> mask in the browser (headless Debian Chromium, onnxruntime-web WASM), SAM ViT-B decoder
(random init): SAM's official ONNX export (``SamOnnxModel``, full-resolution output, as its demo
uses, optimised by the browser) against ours (stored as the server stores them, optimised at
export, and loaded as the workspace loads them, without optimising again;
``samapp.ml.fast_decoder``: per-image prepare graph + lean per-click graph, low-resolution
output thresholded and upscaled on a canvas), interleaved click by click in the
same page. Our variants: ``fast`` (exact fp32), ``fast_tanh`` (tanh GELU in the upscaling),
``fast_int8up`` (int8 weights for the two upscaling matmuls) and both; the ratio uses the fastest
one whose masks keep IoU >= 0.98 against the fp32 torch decoder. The workspace runs
``fast_multi_int8up_tanh`` (all candidate masks) where it passes the export's parity probe (ViT
models), ``fast_multi`` (exact fp32) elsewhere; both are compared with ``lowres_multi``, the
single-graph decoder it used before and still uses for clicks that refine a mask.

    python bench/decoder_browser.py [--clicks 30] [--threads 2]

With SAM 2.1 Hiera-T's browser graphs (``samapp.ml.sam2_onnx``: the single graph in fp32 and
int8, and ``fast_multi``, its prepare + click pair from ``samapp.ml.sam2_fast``; ``--no-sam2``
skips them) in the same page, fed its three feature maps of the same photo, checked against
``SAM2ImagePredictor``. Also checks mask agreement: thresholded low-res masks of ours (from the
browser) against SAM's fp32 torch decoder on the same prompts (ViT-B), and the same check with
native onnxruntime on
``sam_tiny`` (committed checkpoint when present) over its held-out generated test images.
Prints a table, the op-type profile of our click graph (native onnxruntime, 2 threads), and the
official/ours p50 ratio last."""

import argparse
import base64
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from browser.harness import ensure_frontend_modules, run_page, serve  # noqa: E402

from samapp.ml.embedding import compute_embeddings  # noqa: E402
from samapp.ml.fast_decoder import PREPARE_OUTPUTS, export_fast_decoder  # noqa: E402
from samapp.ml.onnx_common import optimize_offline  # noqa: E402
from samapp.ml.onnx_export import (  # noqa: E402
    PARITY_MIN_MEAN_IOU,
    SamOnnxLowRes,
    export_decoder,
)
from samapp.ml.registry import load_model  # noqa: E402
from samapp.ml.sam2_embedding import (  # noqa: E402
    compute_sam2_features,
    sam2_predictor,
    set_sam2_predictor_features,
)
from samapp.ml.sam2_fast import export_sam2_fast_decoder  # noqa: E402
from samapp.ml.sam2_onnx import export_sam2_decoder  # noqa: E402
from samapp.ml.synthetic import generate_scene  # noqa: E402
from samapp.ml.tiny import SAM_TINY_CHECKPOINT  # noqa: E402

SAM2 = "sam2.1_hiera_tiny"
SAM2_SHOWN = ("sam2_lowres_multi", "sam2_lowres_multi_int8", "sam2_fast_multi")
# Our click-graph variants besides the exact fp32 one ("fast"): int8 weights for the two
# output-upscaling matmuls (half the per-click MACs) and the tanh GELU there (erf is slow in WASM).
OURS = {
    "fast_tanh": {"approximate_gelu": True},
    "fast_int8up": {"int8": "upscale"},
    "fast_int8up_tanh": {"int8": "upscale", "approximate_gelu": True},
    "fast_multi": {"multimask": True},
    "fast_multi_int8up_tanh": {"multimask": True, "int8": "upscale", "approximate_gelu": True},
}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def torch_reference(model, embedding: torch.Tensor, coords: np.ndarray) -> np.ndarray:
    """SAM's fp32 torch decoder (single-mask ONNX rule, no mask input): (P, 2) -> (4h, 4w)."""
    h, w = model.prompt_encoder.image_embedding_size
    labels = torch.tensor([[1.0] * (len(coords) - 1) + [-1.0]])
    with torch.no_grad():
        _, masks = SamOnnxLowRes(model, return_single_mask=True)(
            embedding[None],
            torch.from_numpy(coords[None].astype(np.float32)),
            labels,
            torch.zeros(1, 1, 4 * h, 4 * w),
            torch.zeros(1),
        )
    return masks[0, 0].numpy()


def synthetic_photo(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A deterministic (H, W, 3) uint8 test image: a generated scene resized to ``size``."""
    from PIL import Image

    scene = generate_scene(seed, 0, size=512)
    return np.asarray(Image.fromarray(scene.image).resize((size[1], size[0])))


def sam2_setup(out: Path, orig: tuple[int, ...], models: dict[str, str], config: dict) -> Any:
    """SAM 2.1 Hiera-T (random init): its features of the same photo and its browser graphs
    (single graph fp32 and int8, fast prepare + click), added to the page's config; returns
    (model, features)."""
    torch.manual_seed(0)
    model = load_model(SAM2, random_init=True)
    features = compute_sam2_features(model, [synthetic_photo(orig)])[0]
    models["sam2_lowres_multi"] = export_sam2_decoder(model, out / "sam2.onnx").name
    models["sam2_lowres_multi_int8"] = export_sam2_decoder(
        model, out / "sam2_int8.onnx", int8=True
    ).name
    fast = export_sam2_fast_decoder(model, out / "sam2_fast")
    models["sam2_fast_prepare"] = f"sam2_fast/{fast['prepare'].name}"
    models["sam2_fast_multi"] = f"sam2_fast/{fast['click'].name}"
    files, shapes = {}, {}
    for name, array in features.arrays().items():
        files[name] = f"sam2_{name}.f32"
        shapes[name] = list(array.shape)
        (out / files[name]).write_bytes(array.astype("<f4").tobytes())
    config["sam2"] = {"img_size": model.image_size, "files": files, "shapes": shapes}
    return model, features


def sam2_agreement(sam2: Any, result: dict, clicks: list) -> dict[str, tuple[float, float]]:
    """The browser's shown SAM 2 masks (best-scored multimask output) against
    ``SAM2ImagePredictor`` on the same clicks and features."""
    model, features = sam2
    predictor = sam2_predictor(model)
    set_sam2_predictor_features(predictor, features)
    agreement = {}
    for name in SAM2_SHOWN:
        values = []
        for k, b64 in enumerate(result["masks"][name]):
            logits = np.frombuffer(base64.b64decode(b64), "<f4").reshape(256, 256)
            _, scores, low = predictor.predict(np.array([clicks[k]]), np.array([1]))
            values.append(iou(low[int(np.argmax(scores))] > 0, logits > 0))
        agreement[name] = (float(np.mean(values)), float(np.min(values)))
    return agreement


def tiny_check(out: Path, images: int) -> dict[str, float]:
    """Fast decoder (native onnxruntime) vs torch on sam_tiny over held-out generated scenes."""
    trained = SAM_TINY_CHECKPOINT.is_file()
    torch.manual_seed(0)
    model = load_model("sam_tiny", random_init=not trained)
    result: dict[str, float] = {"trained": float(trained)}
    scenes = [
        generate_scene(7_000_001, i, size=model.image_encoder.img_size) for i in range(images)
    ]
    embeddings = compute_embeddings(model, [s.image for s in scenes])
    for key, options in {"fp32": {}, "int8up_tanh": OURS["fast_int8up_tanh"]}.items():
        paths = export_fast_decoder(model, out / "tiny", **options)
        prepare = ort.InferenceSession(str(paths["prepare"]))
        click = ort.InferenceSession(str(paths["click"]))
        ious = []
        for scene, emb in zip(scenes, embeddings, strict=True):
            prepared = prepare.run(None, {"image_embeddings": emb.embedding[None].numpy()})
            feeds = dict(zip(PREPARE_OUTPUTS, prepared, strict=True))
            for mask in scene.masks:
                ys, xs = np.nonzero(mask)
                k = len(ys) // 2
                coords = np.array([[xs[k], ys[k]], [0, 0]], np.float32)
                ref = torch_reference(model, emb.embedding, coords) > 0
                _, logits = click.run(
                    None,
                    {
                        **feeds,
                        "point_coords": coords[None],
                        "point_labels": np.array([[1.0, -1.0]], np.float32),
                    },
                )
                ious.append(iou(ref, logits[0, 0] > 0))
        result[f"{key}_mean_iou"] = float(np.mean(ious))
        result[f"{key}_min_iou"] = float(np.min(ious))
        result["masks"] = float(len(ious))
    return result


def native_profile(paths: dict[str, Path], embedding: np.ndarray, runs: int) -> dict[str, float]:
    """Share of time per op type in our click graph (native onnxruntime, 2 threads)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    prepare = ort.InferenceSession(str(paths["prepare"]), options)
    feeds = dict(
        zip(
            PREPARE_OUTPUTS,
            prepare.run(None, {"image_embeddings": embedding}),
            strict=True,
        )
    )
    feeds["point_coords"] = np.array([[[500.0, 400.0], [0.0, 0.0]]], np.float32)
    feeds["point_labels"] = np.array([[1.0, -1.0]], np.float32)
    options.enable_profiling = True
    options.profile_file_prefix = str(paths["click"].parent / "profile")
    session = ort.InferenceSession(str(paths["click"]), options)
    for _ in range(runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    return {op: dur / total for op, dur in per_op.most_common(8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="1200x1600", help="original image HxW")
    parser.add_argument("--tiny-images", type=int, default=10)
    parser.add_argument(
        "--no-sam2", dest="sam2", action="store_false", help="skip the SAM 2.1 Hiera-T graphs"
    )
    args = parser.parse_args()
    ensure_frontend_modules()
    orig = tuple(int(v) for v in args.size.split("x"))

    torch.manual_seed(0)
    model = load_model("sam_vit_b", random_init=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        emb = compute_embeddings(model, [synthetic_photo(orig)])[0]
        encode_s = time.perf_counter() - t0
        models = {
            "official": export_decoder(model, "official_single", out / "official.onnx").name,
            "lowres_int8": export_decoder(model, "lowres_single_int8", out / "lowres.onnx").name,
            "lowres_multi": export_decoder(model, "lowres_multi", out / "lowres_multi.onnx").name,
        }
        fast = export_fast_decoder(model, out)
        models |= {"fast_prepare": fast["prepare"].name, "fast": fast["click"].name}
        for name, options in OURS.items():
            models[name] = export_fast_decoder(model, out, **options)["click"].name
        embedding = emb.embedding.numpy().astype("<f4")
        (out / "embedding.f32").write_bytes(embedding.tobytes())
        rng = np.random.default_rng(0)
        clicks = [
            [float(rng.uniform(0, orig[1])), float(rng.uniform(0, orig[0]))]
            for _ in range(args.clicks)
        ]
        return_masks = min(8, args.clicks)
        config = {
            "orig_size": list(orig),
            "input_size": list(emb.input_size),
            "img_size": model.image_encoder.img_size,
            "embedding_shape": list(embedding.shape),
            "models": models,
            "clicks": clicks,
            "warmup": args.warmup,
            "threads": args.threads,
            "return_masks": return_masks,
        }
        sam2 = sam2_setup(out, orig, models, config) if args.sam2 else None
        # Ours as the server stores and the workspace loads them: optimised at export, sessions
        # created without optimising; SAM's export as its demo loads it (the browser optimises).
        stored = [name for name in models if name != "official"]
        for name in stored:
            optimize_offline(out / models[name])
        config["stored"] = stored
        (out / "config.json").write_text(json.dumps(config))
        with serve(out) as base:
            result = run_page(f"{base}/bench/decoder.html")

        # Agreement with SAM's fp32 torch decoder on the same prompts.
        scale = model.image_encoder.img_size / max(orig)
        agreement = {}
        for name in ("lowres_int8", "lowres_multi", "fast", *OURS):
            values = []
            for k, b64 in enumerate(result["masks"][name]):
                logits = np.frombuffer(base64.b64decode(b64), "<f4").reshape(256, 256)
                coords = np.array([[c * scale for c in clicks[k]], [0.0, 0.0]])
                values.append(iou(torch_reference(model, emb.embedding, coords) > 0, logits > 0))
            agreement[name] = (float(np.mean(values)), float(np.min(values)))
        if sam2 is not None:
            agreement |= sam2_agreement(sam2, result, clicks)
        tiny = tiny_check(out, args.tiny_images)
        profile = native_profile(fast, embedding[None], runs=5)
        sizes = {name: (out / file).stat().st_size for name, file in models.items()}

    ms = result["click_ms"]
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at end; "
        f"{result['user_agent'].split(') ')[-1]}; cross-origin isolated "
        f"{result['cross_origin_isolated']}; WASM threads {result['threads']}; "
        f"WebGPU available: {result['webgpu_available']} (WASM reported)"
    )
    print(
        f"image {orig[0]}x{orig[1]}; ViT-B encoder (random init, torch CPU) {encode_s:.1f} s; "
        f"prepare (once per image) p50 {result['timings']['prepare_ms']['p50']:.1f} ms"
    )
    print(
        f"{'variant':<24}{'p50 ms':>9}{'p90 ms':>9}{'mean ms':>9}{'MB':>7}"
        "  IoU vs torch fp32 (mean/min)"
    )
    for name in ms:
        agree = agreement.get(name)
        agree_s = f"{agree[0]:.4f}/{agree[1]:.4f}" if agree else "-"
        print(
            f"{name:<24}{ms[name]['p50']:9.1f}{ms[name]['p90']:9.1f}{ms[name]['mean']:9.1f}"
            f"{sizes[name] / 1e6:7.1f}  {agree_s}"
        )
    print(
        f"sam_tiny (trained={bool(tiny['trained'])}, {int(tiny['masks'])} masks, native ORT): "
        f"IoU vs torch fp32 fp32 {tiny['fp32_mean_iou']:.4f}/{tiny['fp32_min_iou']:.4f}, "
        f"int8up_tanh {tiny['int8up_tanh_mean_iou']:.4f}/{tiny['int8up_tanh_min_iou']:.4f}"
    )
    print(
        "our click graph, time share by op (native ORT): "
        + ", ".join(f"{op} {share:.0%}" for op, share in profile.items())
    )
    if "sam2_lowres_multi" in ms:
        print(
            "SAM 2.1 Hiera-T fast prepare (once per image) p50 "
            f"{result['timings']['sam2_prepare_ms']['p50']:.1f} ms"
        )
        for name in SAM2_SHOWN:
            print(
                f"SAM 2.1 Hiera-T {name} vs SAM ViT-B lowres_multi / fast_multi p50: "
                f"{ms[name]['p50']:.1f} / {ms['lowres_multi']['p50']:.1f} / "
                f"{ms['fast_multi']['p50']:.1f} ms"
            )
    before = ms["lowres_multi"]["p50"]
    for name in ("fast_multi", "fast_multi_int8up_tanh"):
        print(
            f"workspace decoder {name} vs lowres_multi p50: {before:.1f} / {ms[name]['p50']:.1f}"
            f" ms = {before / ms[name]['p50']:.2f}x"
        )
    best = min(
        ("fast", *OURS),
        key=lambda n: ms[n]["p50"] if agreement[n][1] >= PARITY_MIN_MEAN_IOU else float("inf"),
    )
    ratio = ms["official"]["p50"] / ms[best]["p50"]
    print(
        f"ratio official/{best} p50: {ms['official']['p50']:.1f} / {ms[best]['p50']:.1f} ms"
        f" = {ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
