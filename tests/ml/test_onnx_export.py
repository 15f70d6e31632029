"""ONNX decoder export: checker, hashed files, manifest, and onnxruntime vs torch parity.

Parity is against ``SamPredictor.predict`` (SAM's own torch path) on the same embedding and
prompts. Tolerances: fp32 variants, logits within 1e-3 absolute plus 1e-3 relative to the
largest logit, IoU of thresholded masks >= 0.99; int8 variants (weights quantized to 8 bits),
IoU >= 0.9 on every prompt set and >= 0.95 on average (random-init decoders;
measured 0.97-0.99 mean), predicted IoU within 0.1.
"""

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from django.core.management import CommandError, call_command
from segment_anything import SamPredictor

from samapp.ml import fast_decoder, onnx_export
from samapp.ml.embedding import ImageEmbedding, set_predictor_embedding
from samapp.ml.fast_decoder import CLICK_INPUTS, PREPARE_INPUTS, PREPARE_OUTPUTS
from samapp.ml.onnx_export import (
    DECODER_VARIANTS,
    PARITY_MIN_MEAN_IOU,
    VARIANTS,
    export_decoder,
    export_decoders,
)
from samapp.ml.registry import load_model
from samapp.ml.tiny import SAM_TINY_CHECKPOINT

FP32_ATOL = 1e-3
FP32_RTOL = 1e-3
FP32_MIN_IOU = 0.99
INT8_MIN_IOU = 0.9
INT8_MIN_MEAN_IOU = 0.95
INT8_IOU_PRED_ATOL = 0.1
ORIGINAL_SIZE = (300, 400)

IOUS: dict[str, list[float]] = {}
REFERENCES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _model(name: str):
    torch.manual_seed(0)
    trained = name == "sam_tiny" and SAM_TINY_CHECKPOINT.is_file()
    return load_model(name, random_init=not trained)


@pytest.fixture(scope="module", params=["sam_tiny", "sam_vit_b"])
def exported(request, tmp_path_factory):
    """(model, predictor set on an embedding, manifest, out_dir) for each model."""
    model = _model(request.param)
    out = tmp_path_factory.mktemp(request.param)
    manifest = export_decoders(model, request.param, out)
    c, h, w = manifest["embedding_shape"]
    generator = torch.Generator().manual_seed(1)
    embedding = ImageEmbedding(
        embedding=torch.randn(c, h, w, generator=generator),
        input_size=SamPredictor(model).transform.get_preprocess_shape(
            *ORIGINAL_SIZE, model.image_encoder.img_size
        ),
        original_size=ORIGINAL_SIZE,
    )
    predictor = SamPredictor(model)
    set_predictor_embedding(predictor, embedding)
    return model, predictor, manifest, out


def test_files_are_content_hashed_and_listed(exported):
    model, _, manifest, out = exported
    assert set(manifest["variants"]) | set(manifest["rejected"]) == set(DECODER_VARIANTS)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    h, w = model.prompt_encoder.image_embedding_size
    assert manifest["mask_input_size"] == [4 * h, 4 * w]
    files = [(n, e) for n, e in manifest["variants"].items()]
    fast = [(n, e) for n, e in files if "prepare" in e]
    files += [(f"{n}_prepare", e["prepare"]) for n, e in fast]
    for name, entry in files:
        data = (out / entry["filename"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["filename"].startswith(f"{manifest['model_key']}.{name}.")
        assert entry["sha256"][:16] in entry["filename"]
        assert entry["bytes"] == len(data)
        if name in VARIANTS:
            assert [i["name"] for i in entry["inputs"]] == VARIANTS[name].input_names
            assert [o["name"] for o in entry["outputs"]] == VARIANTS[name].output_names
            assert entry["inputs"][1]["shape"] == [1, "num_points", 2]
    fast = manifest["variants"]["fast_multi"]
    assert [i["name"] for i in fast["prepare"]["inputs"]] == PREPARE_INPUTS
    assert [i["name"] for i in fast["inputs"]] == CLICK_INPUTS
    assert fast["mask_input_variant"] == "lowres_multi"
    sizes = {name: entry["bytes"] for name, entry in manifest["variants"].items()}
    print(manifest["model_key"], sizes)
    assert sizes["official_single_int8"] < 0.7 * sizes["official_single"]
    assert not list(out.glob(".*"))  # no temporary files left


def test_export_is_deterministic(exported, tmp_path):
    model, _, manifest, _ = exported
    if manifest["model_key"] != "sam_tiny":
        pytest.skip("one model is enough")
    again = export_decoders(model, "sam_tiny", tmp_path, ["lowres_multi"])
    assert again["variants"]["lowres_multi"] == manifest["variants"]["lowres_multi"]


def test_fast_variant_brings_its_mask_input_variant(tmp_path):
    model = load_model("sam_tiny", random_init=True)
    manifest = export_decoders(model, "sam_tiny", tmp_path, ["fast_multi"])
    assert list(manifest["variants"]) == ["fast_multi", "lowres_multi"]
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == sorted(
        [
            manifest["variants"]["fast_multi"]["filename"],
            manifest["variants"]["fast_multi"]["prepare"]["filename"],
            manifest["variants"]["lowres_multi"]["filename"],
        ]
    )
    assert not list(tmp_path.glob(".*"))  # no temporary files or folders left


def test_stored_graphs_are_optimised_offline_with_standard_ops_only(tmp_path):
    """The browser creates sessions of the stored graphs without optimising them again: the
    export did it, with onnxruntime's basic rewrites (standard ONNX ops, valid for every
    execution provider) and without materialising computed constants."""
    model = load_model("sam_tiny", random_init=True)
    traced = fast_decoder.export_fast_decoder(model, tmp_path / "traced", multimask=True)
    manifest = export_decoders(model, "sam_tiny", tmp_path / "stored", ["fast_multi"])
    assert manifest["offline_optimization"] == "basic"
    entry = manifest["variants"]["fast_multi"]
    for part, stored in (("click", entry), ("prepare", entry["prepare"])):
        before = onnx.load(str(traced[part]))
        after = onnx.load(str(tmp_path / "stored" / stored["filename"]))
        assert {node.domain for node in after.graph.node} <= {"", "ai.onnx"}, part
        assert len(after.graph.node) <= len(before.graph.node), part
        assert stored["bytes"] <= 1.05 * traced[part].stat().st_size, part  # nothing folded in
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        ort.InferenceSession(str(tmp_path / "stored" / stored["filename"]), options)


def test_lossy_fast_variant_is_served_only_where_it_passes_its_parity_probe(exported):
    """int8 upscaling + tanh GELU: kept for ViT-B (its masks follow the exact decoder's),
    rejected for the 64-wide trained sam_tiny, whose masks it changes (measured 0.96)."""
    _, _, manifest, out = exported
    name = "fast_multi_int8up_tanh"
    key = manifest["model_key"]
    if key == "sam_vit_b":
        entry = manifest["variants"][name]
        print(key, entry["parity"])
        assert entry["int8"]
        assert entry["parity"]["mean_iou"] >= PARITY_MIN_MEAN_IOU
        assert entry["parity"]["masks"] >= 4 * 36  # every candidate of every probe click
        assert entry["mask_input_variant"] == "lowres_multi"
        assert name not in manifest["rejected"]
    elif SAM_TINY_CHECKPOINT.is_file():
        rejected = manifest["rejected"][name]
        print(key, rejected)
        assert rejected["parity"]["mean_iou"] < PARITY_MIN_MEAN_IOU
        assert "probe mask IoU" in rejected["reason"]
        assert name not in manifest["variants"]
        assert not [p for p in out.glob(f"{key}.{name}*")]  # nothing stored
    else:
        pytest.skip("random-init sam_tiny: no expectation")


def test_rejected_variant_is_not_stored(tmp_path, monkeypatch):
    """The gate itself, on the random-init tiny model: a probe result below the bar drops the
    variant's files and records why; at or above it, the variant is stored with its parity."""
    model = load_model("sam_tiny", random_init=True)
    name = "fast_multi_int8up_tanh"
    for mean, kept in ((PARITY_MIN_MEAN_IOU - 0.01, False), (PARITY_MIN_MEAN_IOU, True)):
        parity = {"mean_iou": mean, "min_iou": 0.5, "masks": 160}
        monkeypatch.setattr(onnx_export, "mask_parity", lambda *args, p=parity: p)
        out = tmp_path / str(kept)
        manifest = export_decoders(model, "sam_tiny", out, [name])
        assert (name in manifest["variants"]) is kept
        assert (name in manifest["rejected"]) is not kept
        assert bool(list(out.glob(f"sam_tiny.{name}.*"))) is kept
        stored = manifest["variants"][name] if kept else manifest["rejected"][name]
        assert stored["parity"] == parity
        assert list(manifest["variants"])[-1] == "lowres_multi"
        assert not list(out.glob(".*"))


def test_mask_parity_of_the_exact_graph_is_one(tmp_path):
    model = load_model("sam_tiny", random_init=True)
    paths = fast_decoder.export_fast_decoder(model, tmp_path, multimask=True)
    parity = fast_decoder.mask_parity(model, paths)
    assert parity["masks"] >= 4 * 37
    assert parity["mean_iou"] == pytest.approx(1.0, abs=1e-3)
    assert parity["min_iou"] >= 0.9  # a mask of a few pixels may flip one at float rounding


def test_export_rejects_unknown_variant_and_gpu_or_half_models(tmp_path):
    model = load_model("sam_tiny", random_init=True)
    with pytest.raises(ValueError, match="Unknown variants"):
        export_decoders(model, "sam_tiny", tmp_path, ["fancy"])
    with pytest.raises(ValueError, match="float32"):
        export_decoder(model.half(), "lowres_single", tmp_path / "x.onnx")


PROMPTS = {
    "points": dict(points=[[120.0, 80.0]], labels=[1]),
    "two_points": dict(points=[[120.0, 80.0], [250.0, 200.0]], labels=[1, 0]),
    "box": dict(box=[60.0, 40.0, 260.0, 220.0]),
    "points_box": dict(points=[[150.0, 120.0]], labels=[1], box=[60.0, 40.0, 260.0, 220.0]),
    "previous_mask": dict(points=[[120.0, 80.0], [200.0, 150.0]], labels=[1, 1], previous=True),
}


def _torch_reference(predictor, prompt_name, multimask, mask_input):
    """``SamPredictor.predict`` logits, cached per model, prompt and output mode."""
    key = (id(predictor), prompt_name, multimask)
    if key not in REFERENCES:
        REFERENCES[key] = _predict(predictor, PROMPTS[prompt_name], multimask, mask_input)
    return REFERENCES[key]


def _predict(predictor, prompt, multimask, mask_input):
    points = np.array(prompt["points"]) if "points" in prompt else None
    labels = np.array(prompt["labels"]) if "labels" in prompt else None
    box = np.array(prompt["box"]) if "box" in prompt else None
    masks, ious, low_res = predictor.predict(
        points, labels, box, mask_input, multimask_output=multimask, return_logits=True
    )
    return masks, ious, low_res


def _onnx_inputs(predictor, prompt, mask_input):
    """SAM's prompt layout: points, a padding point when there is no box, box corners."""
    coords = np.array(prompt.get("points", np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
    labels = np.array(prompt.get("labels", []), dtype=np.float32)
    if "box" in prompt:
        coords = np.concatenate([coords, np.array(prompt["box"]).reshape(2, 2)])
        labels = np.concatenate([labels, [2.0, 3.0]])
    else:
        coords = np.concatenate([coords, np.zeros((1, 2))])
        labels = np.concatenate([labels, [-1.0]])
    coords = predictor.transform.apply_coords(coords, predictor.original_size)
    h, w = predictor.model.prompt_encoder.image_embedding_size
    return {
        "image_embeddings": predictor.features.numpy(),
        "point_coords": coords[None].astype(np.float32),
        "point_labels": labels[None].astype(np.float32),
        "mask_input": (
            np.zeros((1, 1, 4 * h, 4 * w), np.float32) if mask_input is None else mask_input[None]
        ),
        "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        "orig_im_size": np.array(predictor.original_size, np.float32),
    }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.mark.parametrize("variant_name", sorted(VARIANTS))
def test_onnxruntime_matches_torch_decoder(exported, variant_name, request):
    _, predictor, manifest, out = exported
    variant = VARIANTS[variant_name]
    if variant.int8 and manifest["model_key"] == "sam_tiny":
        # Dynamic int8 holds for ViT-B (min IoU 0.972) but not for the trained 64-wide tiny
        # decoder (min IoU 0.79 on the first prompt with the committed checkpoint): the UI
        # serves sam_tiny in fp32.
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="int8 quantization too coarse for sam_tiny")
        )
    session = ort.InferenceSession(
        str(out / manifest["variants"][variant_name]["filename"]),
        providers=["CPUExecutionProvider"],
    )
    key = f"{manifest['model_key']}/{variant_name}"
    for prompt_name, prompt in PROMPTS.items():
        mask_input = None
        if prompt.get("previous"):
            _, ious, low_res = _torch_reference(predictor, "points", True, None)
            mask_input = low_res[np.argmax(ious)][None].astype(np.float32)
        feeds = _onnx_inputs(predictor, prompt, mask_input)
        outputs = dict(
            zip(
                variant.output_names,
                session.run(None, {n: feeds[n] for n in variant.input_names}),
                strict=True,
            )
        )
        # SAM's selection rule: with <= 2 prompt points (one click + padding, or a box
        # alone) the best of the multimask outputs, else the single-mask output.
        many = feeds["point_coords"].shape[1] > 2
        if variant.single_mask:
            masks, ious, low_res = _torch_reference(predictor, prompt_name, not many, mask_input)
            best = 0 if many else int(np.argmax(ious))
            expected = (masks[best : best + 1], ious[best : best + 1], low_res[best : best + 1])
        else:
            single = _torch_reference(predictor, prompt_name, False, mask_input)
            multi = _torch_reference(predictor, prompt_name, True, mask_input)
            expected = tuple(np.concatenate([s, m]) for s, m in zip(single, multi, strict=True))
        got_logits = outputs["low_res_masks" if variant.low_res else "masks"][0]
        want_logits = expected[2 if variant.low_res else 0]
        assert got_logits.shape == want_logits.shape, (key, prompt_name)
        ious = [_iou(g > 0, w > 0) for g, w in zip(got_logits, want_logits, strict=True)]
        IOUS.setdefault(key, []).extend(ious)
        if variant.int8:
            assert min(ious) >= INT8_MIN_IOU, (key, prompt_name, ious)
            np.testing.assert_allclose(
                outputs["iou_predictions"][0], expected[1], atol=INT8_IOU_PRED_ATOL
            )
        else:
            tol = FP32_ATOL + FP32_RTOL * np.abs(want_logits).max()
            np.testing.assert_allclose(got_logits, want_logits, atol=tol, rtol=0)
            np.testing.assert_allclose(outputs["iou_predictions"][0], expected[1], atol=1e-4)
            assert min(ious) >= FP32_MIN_IOU, (key, prompt_name, ious)
    mean_iou = float(np.mean(IOUS[key]))
    print(f"{key}: mean IoU {mean_iou:.4f}, min {min(IOUS[key]):.4f}")
    if variant.int8:
        assert mean_iou >= INT8_MIN_MEAN_IOU


def test_fast_variant_matches_torch_decoder(exported):
    """Prepare once, then every prompt without a mask input through the click graph: the
    same four masks and IoUs as ``lowres_multi`` (SAM's single-mask output, then the three
    multimask outputs)."""
    _, predictor, manifest, out = exported
    entry = manifest["variants"]["fast_multi"]
    prepare = ort.InferenceSession(str(out / entry["prepare"]["filename"]))
    click = ort.InferenceSession(str(out / entry["filename"]))
    image = {"image_embeddings": predictor.features.numpy()}
    prepared = dict(zip(PREPARE_OUTPUTS, prepare.run(None, image), strict=True))
    for prompt_name, prompt in PROMPTS.items():
        if prompt.get("previous"):
            continue  # mask input: the lowres_multi graph's job
        feeds = _onnx_inputs(predictor, prompt, None)
        ious, low_res = click.run(
            None, prepared | {n: feeds[n] for n in ("point_coords", "point_labels")}
        )
        single = _torch_reference(predictor, prompt_name, False, None)
        multi = _torch_reference(predictor, prompt_name, True, None)
        _, want_ious, want_logits = (
            np.concatenate([s, m]) for s, m in zip(single, multi, strict=True)
        )
        tol = FP32_ATOL + FP32_RTOL * np.abs(want_logits).max()
        np.testing.assert_allclose(low_res[0], want_logits, atol=tol, rtol=0)
        np.testing.assert_allclose(ious[0], want_ious, atol=1e-4)


def test_export_command_writes_hashed_files(tmp_path):
    call_command(
        "sam_export_decoder",
        "--model",
        "sam_tiny",
        "--out",
        str(tmp_path),
        "--variants",
        "lowres_single",
        "official_multi_int8",
        "--random-init",
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["variants"]) == {"lowres_single", "official_multi_int8"}
    for entry in manifest["variants"].values():
        assert (tmp_path / entry["filename"]).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "sam_vit_x"], "Unknown model 'sam_vit_x'"),
        (["--model", "sam_vit_b"], "python manage.py sam_download sam_vit_b"),
        (["--variants", "fancy"], "invalid choice"),
    ],
)
def test_export_command_rejects_bad_input(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("sam_export_decoder", "--out", str(tmp_path), *args)


def test_export_command_rejects_file_as_out(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CommandError, match="not a directory"):
        call_command("sam_export_decoder", "--out", str(target), "--random-init")
