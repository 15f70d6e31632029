"""What the decoder exports share (``onnx_export``, ``fast_decoder``, ``sam2_onnx``): the opset,
tracing a module to an ONNX file, dynamic int8 quantization of its weights, and storing a
graph, optimised offline, under its content hash."""

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from segment_anything.modeling import Sam
from torch import nn

OPSET = 17
# The number of prompt points is the one dynamic axis of every decoder graph.
POINT_AXES = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
# The onnxruntime optimisation level stored graphs already have (``optimize_offline``): the
# browser creates their sessions without optimising them again, which was most of the cost of
# a page's first decoder session (``bench/first_session.py``). "basic" rewrites keep standard
# ONNX ops only, so the graphs stay valid for every execution provider.
OFFLINE_OPTIMIZATION = "basic"


def require_cpu_float32(model: Sam) -> None:
    """Raise ValueError unless ``model`` is on the CPU in float32 (what export traces)."""
    if model.pixel_mean.device.type != "cpu" or model.pixel_mean.dtype != torch.float32:
        raise ValueError("Export needs the model on the CPU in float32")


def trace_to_onnx(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """Trace ``module`` on ``inputs`` into ``path`` (TorchScript exporter, opset ``OPSET``,
    constants folded); ``names`` are the graph's (input names, output names)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # dynamo=False is meant
        torch.onnx.export(
            module,
            inputs,
            str(path),
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )


@contextlib.contextmanager
def _root_logger_level(level: int) -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_weights(source: Path, target: Path, **options: Any) -> None:
    """Write ``source`` with QUInt8 dynamically quantized weights to ``target``, then delete
    ``source``; ``options`` go to onnxruntime's ``quantize_dynamic``."""
    with _root_logger_level(logging.ERROR):  # the quantizer logs every tensor to root
        quantize_dynamic(source, target, weight_type=QuantType.QUInt8, **options)
    source.unlink()


def _io_spec(values: Any) -> list[dict[str, Any]]:
    """Names, element types and shapes (symbolic dims as strings) of graph inputs/outputs."""
    return [
        {
            "name": v.name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
            "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
        }
        for v in values
    ]


def export_plan(
    out_dir: str | Path, variants: list[str] | None, known: list[str]
) -> tuple[Path, list[str]]:
    """The created ``out_dir`` and the variants to export (``known`` when ``variants`` is
    None); raises ``ValueError`` naming any variant not in ``known``."""
    names = variants or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"Unknown variants {unknown}; choose from {sorted(known)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out, list(names)


def optimize_offline(path: Path) -> None:
    """Rewrite the graph at ``path`` in place as onnxruntime's ``OFFLINE_OPTIMIZATION`` level
    leaves it. Constant folding is left out: the exporter folded the graph's constants
    already, and onnxruntime would also store tensors computed from them (ViT-B's positional
    encoding: 4 MB more to download for a few ms per image)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    optimized = path.with_name(path.name + ".optimized")
    options.optimized_model_filepath = str(optimized)
    ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["ConstantFolding"],
    )
    os.replace(optimized, path)


def store_hashed(path: Path, out_dir: Path, stem: str) -> dict[str, Any]:
    """Optimise ``path`` offline (``optimize_offline``), then move it to
    ``out_dir / {stem}.{sha256[:16]}.onnx``; describe the file."""
    optimize_offline(path)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    final = path.replace(out_dir / f"{stem}.{sha256[:16]}.onnx")
    graph = onnx.load(str(final), load_external_data=False).graph
    return {
        "filename": final.name,
        "sha256": sha256,
        "bytes": len(data),
        "inputs": _io_spec(graph.input),
        "outputs": _io_spec(graph.output),
    }
