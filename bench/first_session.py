"""What the workspace's first decoder session costs in the browser (headless Debian Chromium,
onnxruntime-web WASM), by part, and what starting the WASM runtime early saves.

The page creates the decoder's sessions (click graph, then prepare graph) of ``--model``'s
``--variant`` export, either cold (the first ``InferenceSession.create`` also fetches, compiles
and starts the WASM runtime and its threads) or after the runtime was started on a one-node
graph, as the decoder worker now does when the page opens (``decoderContext.startRuntime``).
Each configuration runs in a fresh browser, interleaved, ``--runs`` times.

    python bench/first_session.py [--model sam_tiny] [--variant fast_multi] [--runs 3]
        [--threads 2] [--opt all]

Prints the medians, then the cold/started ratio of the decoder's own session time (what is
left on the first click's path once the runtime starts with the page).
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from browser.harness import ensure_frontend_modules, run_page, serve  # noqa: E402

from samapp.ml.onnx_export import export_decoders  # noqa: E402
from samapp.ml.registry import load_model  # noqa: E402


def _one_node_graph(path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "start",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # what onnxruntime-web reads
    onnx.save(model, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam_tiny")
    parser.add_argument("--variant", default="fast_multi")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--opt", default="all", choices=["all", "extended", "basic", "disabled"])
    args = parser.parse_args()
    ensure_frontend_modules()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        model = load_model(args.model, random_init=args.model != "sam_tiny")
        variant = export_decoders(model, args.model, data, variants=[args.variant])["variants"]
        entry = variant[args.variant]
        _one_node_graph(data / "start.onnx")
        config = {
            "tiny": "start.onnx",
            "click": entry["filename"],
            "prepare": entry.get("prepare", {}).get("filename"),
        }
        (data / "config.json").write_text(json.dumps(config))
        rows: dict[str, list[dict[str, float]]] = {"cold": [], "started": []}
        with serve(data) as base:
            for _ in range(args.runs):
                for name, warm in (("cold", 0), ("started", 1)):
                    query = f"threads={args.threads}&opt={args.opt}&warm={warm}"
                    rows[name].append(run_page(f"{base}/bench/first_session.html?{query}"))
    print(f"{args.model} {args.variant}: {args.threads} threads, optimisation {args.opt!r}")
    print(f"medians of {args.runs} fresh pages (ms)")
    medians: dict[str, dict[str, float]] = {}
    for name, results in rows.items():
        keys = [k for k in ("runtimeMs", "clickSessionMs", "prepareSessionMs") if k in results[0]]
        medians[name] = {k: statistics.median(r[k] for r in results) for k in keys}
        medians[name]["decoderMs"] = statistics.median(
            r["clickSessionMs"] + r["prepareSessionMs"] for r in results
        )
        print(f"  {name:8}", "  ".join(f"{k} {v:7.0f}" for k, v in medians[name].items()))
    ratio = medians["cold"]["decoderMs"] / medians["started"]["decoderMs"]
    print(f"decoder sessions cold / with the runtime started first: {ratio:.2f}x")


if __name__ == "__main__":
    main()
