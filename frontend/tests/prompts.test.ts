import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildPromptTensors, candidateIndices, preprocessShape, type Prompt } from "../src/sam/prompts";
import { fp16ToFloat32, int8ToFloat32 } from "../src/sam/fp16";
import { chooseVariant, modelInfo, sessionOptimization } from "../src/sam/variants";
import type { DecoderManifest } from "../src/api/types";

interface Fixture {
  original: [number, number];
  img_size: number;
  input: [number, number];
  points: [number, number][];
  points_input: [number, number][];
  box: [number, number, number, number];
  box_input: [number, number, number, number];
}

const fixtures = JSON.parse(
  readFileSync(new URL("./fixtures/prompt_fixtures.json", import.meta.url), "utf8"),
) as Fixture[];

describe("coordinate transform matches SAM's ResizeLongestSide", () => {
  for (const f of fixtures) {
    const original = { height: f.original[0], width: f.original[1] };
    it(`${f.original.join("x")} → ${f.img_size}`, () => {
      const input = preprocessShape(original, f.img_size);
      expect([input.height, input.width]).toEqual(f.input);
      const prompt: Prompt = { points: f.points.map(([x, y]) => ({ x, y, label: 1 as const })), box: null };
      const t = buildPromptTensors(prompt, original, input);
      expect(t.numPoints).toBe(f.points.length + 1);
      f.points_input.forEach(([x, y], i) => {
        expect(t.pointCoords[i * 2]).toBeCloseTo(x, 3);
        expect(t.pointCoords[i * 2 + 1]).toBeCloseTo(y, 3);
      });
      const withBox = buildPromptTensors({ points: [], box: f.box }, original, input);
      expect(Array.from(withBox.pointLabels)).toEqual([2, 3]);
      f.box_input.forEach((v, i) => expect(withBox.pointCoords[i]).toBeCloseTo(v, 3));
    });
  }
});

describe("prompt tensors", () => {
  const size = { height: 100, width: 200 };
  const input = { height: 64, width: 128 };
  it("pads a lone click with a (0,0,-1) point, like SamPredictor for ONNX", () => {
    const t = buildPromptTensors({ points: [{ x: 100, y: 50, label: 1 }], box: null }, size, input);
    expect(Array.from(t.pointCoords)).toEqual([64, 32, 0, 0]);
    expect(Array.from(t.pointLabels)).toEqual([1, -1]);
    expect(t.numPoints).toBe(2);
  });
  it("puts box corners first (labels 2, 3), then clicks, without padding", () => {
    const t = buildPromptTensors(
      { points: [{ x: 10, y: 10, label: 0 }], box: [150, 80, 50, 20] },
      size,
      input,
    );
    expect(Array.from(t.pointLabels)).toEqual([2, 3, 0]);
    expect(Array.from(t.pointCoords)).toEqual([32, 12.8, 96, 51.2, 6.4, 6.4].map((v) => Math.fround(v)));
  });
  it("offers the three multimask outputs for one click, best preselected", () => {
    const iou = [0.9, 0.5, 0.8, 0.7];
    const r = candidateIndices(iou, { points: [{ x: 1, y: 1, label: 1 }], box: null });
    expect(r.indices).toEqual([1, 2, 3]);
    expect(r.preselected).toBe(2);
  });
  it("offers the single-mask output first with more prompts", () => {
    const iou = [0.6, 0.5, 0.8, 0.7];
    const r = candidateIndices(iou, { points: [], box: [0, 0, 5, 5] });
    expect(r.indices).toEqual([0, 2, 3]);
    expect(r.preselected).toBe(0);
  });
  it("handles decoders with fewer outputs", () => {
    const r = candidateIndices([0.2, 0.9, 0.4], { points: [{ x: 1, y: 1, label: 1 }], box: null });
    expect(r.indices).toEqual([0, 1, 2]);
    expect(r.preselected).toBe(1);
  });
});

describe("embedding decoding", () => {
  it("converts fp16 to float32", () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x0000, 0x3555, 0x7bff, 0x0001, 0xfc00]);
    const out = fp16ToFloat32(halves);
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(-2);
    expect(out[2]).toBe(0);
    expect(out[3]).toBeCloseTo(0.333, 3);
    expect(out[4]).toBe(65504);
    expect(out[5]).toBeCloseTo(5.96e-8, 10);
    expect(out[6]).toBe(-Infinity);
  });
  it("dequantizes int8 with per-channel scales", () => {
    const buffer = new ArrayBuffer(2 * 4 + 2 * 3);
    new Float32Array(buffer, 0, 2).set([0.5, 2]);
    new Int8Array(buffer, 8, 6).set([1, -2, 3, 4, -5, 127]);
    expect(Array.from(int8ToFloat32(buffer, 2, 3))).toEqual([0.5, -1, 1.5, 8, -10, 254]);
  });
});

describe("decoder variant choice", () => {
  const variant = { url: "/x", sha256: "", bytes: 1, inputs: [], outputs: [] };
  const manifest = (names: string[], def: string): DecoderManifest => ({
    model_key: "sam_tiny",
    img_size: 128,
    embedding_shape: [1, 64, 16, 16],
    default_variant: def,
    variants: Object.fromEntries(names.map((n) => [n, variant])),
  });
  it("prefers low-res multi-mask output", () => {
    expect(chooseVariant(manifest(["official", "lowres_multi", "lowres"], "official"))).toBe("lowres_multi");
  });
  it("reads tensor names from specs", () => {
    const m = manifest(["lowres_multi"], "lowres_multi");
    m.variants["lowres_multi"] = { ...variant, inputs: [{ name: "image_embeddings", dtype: "float32", shape: [1, 64, 32, 32] }], outputs: ["iou_predictions"] };
    expect(modelInfo(m, "lowres_multi").inputs).toEqual(["image_embeddings"]);
    expect(modelInfo(m, "lowres_multi").outputs).toEqual(["iou_predictions"]);
  });
  it("ranks unknown names by their flags", () => {
    const m = manifest(["a", "b", "c"], "a");
    m.variants["a"] = { ...variant, low_res: false, single_mask: true, int8: false };
    m.variants["b"] = { ...variant, low_res: true, single_mask: false, int8: true };
    m.variants["c"] = { ...variant, low_res: true, single_mask: false, int8: false };
    expect(chooseVariant(m)).toBe("c");
  });
  it("falls back to the manifest's default", () => {
    expect(chooseVariant(manifest(["weird"], "weird"))).toBe("weird");
  });
  it("prefers the fast decoder and brings its prepare graph and mask-input decoder", () => {
    const m = manifest(["lowres_multi", "fast_multi"], "lowres_multi");
    m.variants["fast_multi"] = {
      ...variant,
      url: "/fast",
      prepare: { ...variant, url: "/prepare", sha256: "p" },
      mask_input_variant: "lowres_multi",
    };
    expect(chooseVariant(m)).toBe("fast_multi");
    const info = modelInfo(m, "fast_multi");
    expect(info.url).toBe("/fast");
    expect(info.prepare).toEqual({ url: "/prepare", sha256: "p" });
    expect(info.maskInputModel?.variant).toBe("lowres_multi");
    expect(info.maskInputModel?.prepare).toBeUndefined();
  });
  it("prefers the int8 fast decoder where the server exported it (it passed its parity probe)", () => {
    const fast = { ...variant, prepare: variant, mask_input_variant: "lowres_multi" };
    const m = manifest(["lowres_multi", "fast_multi"], "fast_multi");
    m.variants["fast_multi"] = fast;
    expect(chooseVariant(m)).toBe("fast_multi");
    m.variants["fast_multi_int8up_tanh"] = { ...fast, int8: true };
    expect(chooseVariant(m)).toBe("fast_multi_int8up_tanh");
  });
  it("skips the browser's graph optimisation on WASM for graphs the server optimised at export", () => {
    const m = manifest(["lowres_multi", "fast_multi"], "fast_multi");
    m.variants["fast_multi"] = { ...variant, prepare: variant, mask_input_variant: "lowres_multi" };
    const traced = modelInfo(m, "fast_multi");
    expect(sessionOptimization(traced, false)).toBe("all");
    const optimized = modelInfo({ ...m, offline_optimization: "basic" }, "fast_multi");
    expect(optimized.optimizedOffline).toBe(true);
    expect(optimized.maskInputModel?.optimizedOffline).toBe(true);
    expect(sessionOptimization(optimized, false)).toBe("disabled");
    expect(sessionOptimization(optimized, true)).toBe("all");
  });
  it("refuses a fast decoder whose mask-input decoder is missing", () => {
    const m = manifest(["fast_multi"], "fast_multi");
    m.variants["fast_multi"] = { ...variant, prepare: variant, mask_input_variant: "lowres_multi" };
    expect(() => modelInfo(m, "fast_multi")).toThrow(/mask-input variant lowres_multi/);
  });
});
