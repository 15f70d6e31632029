import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { DecoderManifest } from "../src/api/types";
import { decoderFeeds } from "../src/sam/feeds";
import { lowResToMaskDirect } from "../src/sam/masks";
import { isPacked, unpackTensors } from "../src/sam/packed";
import { buildPromptTensors } from "../src/sam/prompts";
import { chooseVariant, modelInfo } from "../src/sam/variants";

interface Fixtures {
  packed: Record<"fp16" | "int8", { blob: string; tensors: { name: string; shape: number[]; values: number[] }[] }>;
  masks: { low_side: number; original: [number, number]; logits: number[]; mask: number[] }[];
}

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/sam2_fixtures.json", import.meta.url), "utf8")) as Fixtures;

function bytes(base64: string): ArrayBuffer {
  const raw = Buffer.from(base64, "base64");
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
}

describe("SAM 2 packed embedding (samapp.ml.sam2_embedding.pack_tensors)", () => {
  for (const fmt of ["fp16", "int8"] as const) {
    it(`reads the ${fmt} maps Python wrote, in order, as Python reads them`, () => {
      const { blob, tensors } = fixtures.packed[fmt];
      const buffer = bytes(blob);
      expect(isPacked(buffer)).toBe(true);
      const read = unpackTensors(buffer);
      expect(read.map((t) => [t.name, t.shape])).toEqual(tensors.map((t) => [t.name, t.shape]));
      read.forEach((t, i) => {
        const want = tensors[i]?.values ?? [];
        expect(t.data.length).toBe(want.length);
        t.data.forEach((v, j) => expect(v).toBeCloseTo(want[j] ?? Number.NaN, 6));
      });
    });
  }

  it("refuses a raw embedding and a truncated blob", () => {
    expect(isPacked(new Uint16Array([1, 2, 3, 4, 5, 6]).buffer)).toBe(false);
    expect(() => unpackTensors(new ArrayBuffer(16))).toThrow("bad magic");
    const whole = bytes(fixtures.packed.fp16.blob);
    expect(() => unpackTensors(whole.slice(0, whole.byteLength - 8))).toThrow("past the end");
  });
});

describe("SAM 2 mask upscaling (SAM2Transforms.postprocess_masks)", () => {
  for (const f of fixtures.masks) {
    it(`${f.low_side}² → ${f.original.join("x")} in one bilinear step`, () => {
      const out = { height: f.original[0], width: f.original[1] };
      const mask = lowResToMaskDirect(Float32Array.from(f.logits), 0, f.low_side, out);
      expect(Array.from(mask)).toEqual(f.mask);
    });
  }
});

const MANIFEST: DecoderManifest = {
  model_key: "sam2.1_hiera_tiny",
  img_size: 1024,
  embedding_shape: [1, 256, 64, 64],
  mask_input_size: [256, 256],
  default_variant: "lowres_multi",
  family: "sam2",
  extra_inputs: { high_res_feats_0: [32, 256, 256], high_res_feats_1: [64, 128, 128] },
  variants: {
    lowres_multi: {
      url: "/d/f.onnx",
      sha256: "ab",
      bytes: 1,
      low_res: true,
      single_mask: false,
      int8: false,
      inputs: ["image_embeddings", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels", "mask_input", "has_mask_input"],
      outputs: ["iou_predictions", "low_res_masks"],
    },
  },
};

describe("SAM 2 decoder inputs", () => {
  const info = modelInfo(MANIFEST, chooseVariant(MANIFEST));

  it("prefers the int8 graph where the server exported it (its parity probe passed)", () => {
    const withInt8: DecoderManifest = {
      ...MANIFEST,
      variants: { ...MANIFEST.variants, lowres_multi_int8: { ...MANIFEST.variants["lowres_multi"]!, int8: true } },
    };
    expect(chooseVariant(withInt8)).toBe("lowres_multi_int8");
    expect(chooseVariant(MANIFEST)).toBe("lowres_multi");
  });

  it("prefers the two-graph fast decoder, with the single graph for clicks that refine a mask", () => {
    const lowres = MANIFEST.variants["lowres_multi"]!;
    const fast: DecoderManifest = {
      ...MANIFEST,
      variants: {
        ...MANIFEST.variants,
        lowres_multi_int8: { ...lowres, int8: true },
        fast_multi: {
          ...lowres,
          url: "/d/click.onnx",
          inputs: ["src", "k0", "v0", "q0", "up1_add", "up2_add", "point_coords", "point_labels"],
          prepare: { url: "/d/prepare.onnx", sha256: "cd", bytes: 1, inputs: ["image_embeddings", "high_res_feats_0", "high_res_feats_1"], outputs: ["src", "k0", "v0", "q0", "up1_add", "up2_add"] },
          mask_input_variant: "lowres_multi",
        },
      },
    };
    const chosen = modelInfo(fast, chooseVariant(fast));
    expect(chosen.variant).toBe("fast_multi");
    expect(chosen.prepare).toEqual({ url: "/d/prepare.onnx", sha256: "cd" });
    expect(chosen.extraInputs).toEqual(info.extraInputs);
    expect(chosen.maskInputModel?.variant).toBe("lowres_multi");
    expect(chosen.maskInputModel?.extraInputs).toEqual(info.extraInputs);
  });

  it("takes the family and the high-resolution maps (batch first) from the manifest", () => {
    expect(info.variant).toBe("lowres_multi");
    expect(info.family).toBe("sam2");
    expect(info.extraInputs).toEqual({ high_res_feats_0: [1, 32, 256, 256], high_res_feats_1: [1, 64, 128, 128] });
  });

  it("sends prompts without SAM's padding point: the graph appends it", () => {
    const size = { width: 400, height: 300 };
    const input = { width: 1024, height: 1024 };
    const click = buildPromptTensors({ points: [{ x: 100, y: 150, label: 1 }], box: null }, size, input, false);
    expect(Array.from(click.pointCoords)).toEqual([256, 512]);
    expect(Array.from(click.pointLabels)).toEqual([1]);
    const boxed = buildPromptTensors({ points: [], box: [0, 0, 200, 300] }, size, input, false);
    expect(Array.from(boxed.pointLabels)).toEqual([2, 3]);
    expect(Array.from(boxed.pointCoords)).toEqual([0, 0, 512, 1024]);
  });

  it("feeds the embedding's maps by name beside the prompt and mask tensors", () => {
    type T = { data: Float32Array | string; dims: number[] };
    const make = (data: Float32Array, dims: number[]): T => ({ data, dims });
    const prompt = buildPromptTensors({ points: [{ x: 1, y: 2, label: 0 }], box: null }, { width: 4, height: 4 }, { width: 4, height: 4 }, false);
    const zeroMask = new Float32Array(4);
    const sources = {
      embedding: { data: "embed", dims: [1, 256, 64, 64] },
      extra: { high_res_feats_0: { data: "s0", dims: [1, 32, 256, 256] }, high_res_feats_1: { data: "s1", dims: [1, 64, 128, 128] } },
      prompt,
      maskInput: null,
      zeroMask,
      lowSide: 2,
      originalSize: { width: 4, height: 4 },
    };
    const feeds = decoderFeeds(info.inputs, make, sources);
    expect(Object.keys(feeds)).toEqual(info.inputs);
    expect(feeds["high_res_feats_0"]?.data).toBe("s0");
    expect(feeds["high_res_feats_1"]?.data).toBe("s1");
    expect(feeds["image_embeddings"]?.data).toBe("embed");
    expect(feeds["point_labels"]).toEqual({ data: Float32Array.from([0]), dims: [1, 1] });
    expect(feeds["mask_input"]).toEqual({ data: zeroMask, dims: [1, 1, 2, 2] });
    expect(feeds["has_mask_input"]?.data).toEqual(Float32Array.from([0]));
    const refine = decoderFeeds(info.inputs, make, { ...sources, maskInput: Float32Array.from([1, 2, 3, 4]) });
    expect(refine["has_mask_input"]?.data).toEqual(Float32Array.from([1]));
    expect(() => decoderFeeds(info.inputs, make, { ...sources, extra: {} })).toThrow("high_res_feats_0 is not supported");
  });
});
