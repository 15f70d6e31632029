"""What the workspace's first decoder sessions cost in the browser (headless Debian Chromium,
onnxruntime-web WASM), with the graphs as stored (optimised offline at export,
``onnx_common.optimize_offline``; sessions created with optimisation disabled, as the
workspace creates them) against the graphs as traced, optimised by the browser (``all``, what
the workspace did before).

Each page starts the WASM runtime on a one-node graph first, as the decoder worker does when
the page opens, then creates the click and prepare sessions of ``--model``'s ``--variant``
export, runs each once (the workspace's warm-up) and the click graph 15 more times. Each
configuration runs in a fresh browser, interleaved, ``--runs`` times.

    python bench/first_session.py [--model sam_tiny] [--variant fast_multi] [--runs 3]
        [--threads 2]

Prints the medians, then the ratio of what is on the first click's path (both sessions and
both first runs), browser-optimised / stored.
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from browser.harness import ensure_frontend_modules, run_page, serve  # noqa: E402

from samapp.ml.onnx_export import export_decoders  # noqa: E402
from samapp.ml.registry import load_model  # noqa: E402

FIRST_PATH = ("clickSessionMs", "prepareSessionMs", "firstPrepareMs", "firstClickMs")


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


def _export(model: Any, key: str, variant: str, out: Path) -> dict[str, Any]:
    return dict(export_decoders(model, key, out, variants=[variant])["variants"][variant])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam_tiny")
    parser.add_argument("--variant", default="fast_multi")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    ensure_frontend_modules()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        model = load_model(args.model, random_init=args.model != "sam_tiny")
        stored = _export(model, args.model, args.variant, data / "stored")
        # The same export without the offline optimisation: the graphs as traced.
        with mock.patch("samapp.ml.onnx_common.optimize_offline", return_value=None):
            raw = _export(model, args.model, args.variant, data / "raw")
        _one_node_graph(data / "start.onnx")

        def files(entry: dict[str, Any], folder: str) -> dict[str, str]:
            return {
                "click": f"{folder}/{entry['filename']}",
                "prepare": f"{folder}/{entry['prepare']['filename']}",
            }

        config = {
            "start": "start.onnx",
            "raw": files(raw, "raw"),
            "stored": files(stored, "stored"),
            "clickInputs": stored["inputs"],
            "prepareInputs": stored["prepare"]["inputs"],
        }
        (data / "config.json").write_text(json.dumps(config))
        configurations = {"traced, optimised by the browser": "files=raw&opt=all"}
        configurations["stored (offline), not optimised again"] = "files=stored&opt=disabled"
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in configurations}
        with serve(data) as base:
            for _ in range(args.runs):
                for name, query in configurations.items():
                    url = f"{base}/bench/first_session.html?threads={args.threads}&{query}"
                    rows[name].append(run_page(url))
    print(f"{args.model} {args.variant}: {args.threads} threads")
    print(f"medians of {args.runs} fresh pages (ms)")
    first_path = {}
    for name, results in rows.items():
        medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
        first_path[name] = statistics.median(sum(r[k] for k in FIRST_PATH) for r in results)
        print(f"  {name}:", "  ".join(f"{k} {v:.0f}" for k, v in medians.items()))
        print(f"    on the first click's path: {first_path[name]:.0f}")
    baseline, ours = first_path.values()
    print(f"first-click path, browser-optimised / stored: {baseline / ours:.2f}x")


if __name__ == "__main__":
    main()
