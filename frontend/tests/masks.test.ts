import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  lowResToMask,
  maskArea,
  maskIoU,
  maskToLowResLogits,
  maskToPolygons,
  maskToRings,
  paintDisc,
  polygonsToMask,
  simplifyRing,
} from "../src/sam/masks";

interface LowResFixture {
  low_side: number;
  img_size: number;
  input: [number, number];
  original: [number, number];
  logits: number[];
  mask: number[];
}

// Written by fixtures/make_lowres_fixtures.py from SamPredictor.postprocess_masks.
const lowResFixtures: LowResFixture[] = JSON.parse(
  readFileSync(new URL("./fixtures/lowres_fixtures.json", import.meta.url), "utf8"),
);

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("mask → polygon → mask", () => {
  it("traces a rectangle as 4 corners", () => {
    const size = { width: 6, height: 5 };
    const mask = new Uint8Array(30);
    for (let y = 1; y < 4; y++) for (let x = 2; x < 5; x++) mask[y * 6 + x] = 1;
    const rings = maskToRings(mask, size);
    expect(rings).toHaveLength(1);
    expect(rings[0]).toHaveLength(8);
    expect(Array.from(polygonsToMask(rings, size))).toEqual(Array.from(mask));
  });

  it("round-trips random masks exactly without simplification (holes, diagonals)", () => {
    const rnd = random(7);
    for (let trial = 0; trial < 30; trial++) {
      const size = { width: 3 + Math.floor(rnd() * 25), height: 3 + Math.floor(rnd() * 25) };
      const mask = new Uint8Array(size.width * size.height);
      const density = rnd();
      for (let i = 0; i < mask.length; i++) mask[i] = rnd() < density ? 1 : 0;
      const back = polygonsToMask(maskToRings(mask, size), size);
      expect(Array.from(back)).toEqual(Array.from(mask));
    }
  });

  it("keeps a ring's hole", () => {
    const size = { width: 40, height: 40 };
    const mask = new Uint8Array(1600);
    for (let y = 0; y < 40; y++)
      for (let x = 0; x < 40; x++) {
        const d = (x + 0.5 - 20) ** 2 + (y + 0.5 - 20) ** 2;
        if (d < 15 ** 2 && d > 6 ** 2) mask[y * 40 + x] = 1;
      }
    const rings = maskToPolygons(mask, size, 1);
    expect(rings).toHaveLength(2);
    const back = polygonsToMask(rings, size);
    expect(maskIoU(back, mask)).toBeGreaterThan(0.9);
  });

  it("simplification reduces vertices and keeps the shape within tolerance", () => {
    const size = { width: 100, height: 100 };
    const mask = new Uint8Array(10000);
    paintDisc(mask, size, 50, 50, 35, 1);
    const exact = maskToRings(mask, size)[0] ?? [];
    const simple = simplifyRing(exact, 1.5);
    expect(simple.length).toBeLessThan(exact.length / 2);
    expect(maskIoU(polygonsToMask([simple], size), mask)).toBeGreaterThan(0.97);
    expect(simplifyRing(exact, 0)).toEqual(exact);
  });

  it("empty mask has no polygons", () => {
    expect(maskToPolygons(new Uint8Array(16), { width: 4, height: 4 }, 1)).toEqual([]);
  });
});

describe("low-res logits → mask", () => {
  it("thresholds and upsamples like SAM's postprocessing (crop of the padded input)", () => {
    // img 40x20 (w x h), imgSize 16 → input 16x8, low-res side 8 (= 16/2 here).
    const lowSide = 8;
    const logits = new Float32Array(lowSide * lowSide).fill(-5);
    // Foreground: left half of the valid (top) part of the low-res frame.
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) logits[y * lowSide + x] = 5;
    const mask = lowResToMask(logits, 0, lowSide, 16, { height: 8, width: 16 }, { height: 20, width: 40 });
    expect(mask.length).toBe(800);
    // Left half of the whole original image is foreground (the padding rows are cropped away).
    expect(mask[10 * 40 + 5]).toBe(1);
    expect(mask[10 * 40 + 35]).toBe(0);
    expect(maskArea(mask) / 800).toBeGreaterThan(0.45);
    expect(maskArea(mask) / 800).toBeLessThan(0.55);
  });

  it("gives SamPredictor.postprocess_masks' mask on soft logits", () => {
    for (const c of lowResFixtures) {
      const input = { height: c.input[0], width: c.input[1] };
      const out = { height: c.original[0], width: c.original[1] };
      const mask = lowResToMask(Float32Array.from(c.logits), 0, c.low_side, c.img_size, input, out);
      let differing = 0;
      c.mask.forEach((want, i) => (differing += Number(mask[i] !== want)));
      // float32 (torch) vs float64 (JS) arithmetic may flip a pixel whose logit is ~0; one
      // composed bilinear step instead of SAM's two flips 5 of the first case's 600
      expect(differing).toBeLessThanOrEqual(1);
      expect(maskArea(mask)).toBeGreaterThan(0);
    }
  });

  it("reads the requested plane", () => {
    const plane = 16;
    const logits = new Float32Array(plane * 2).fill(-1);
    logits.fill(1, plane);
    const size = { height: 4, width: 4 };
    expect(maskArea(lowResToMask(logits, 0, 4, 4, size, size))).toBe(0);
    expect(maskArea(lowResToMask(logits, plane, 4, 4, size, size))).toBe(16);
  });

  it("mask → logits → mask keeps the object", () => {
    const size = { width: 64, height: 32 };
    const mask = new Uint8Array(64 * 32);
    paintDisc(mask, size, 20, 16, 10, 1);
    const input = { width: 32, height: 16 };
    const logits = maskToLowResLogits(mask, size, input, 32, 16);
    const back = lowResToMask(logits, 0, 16, 32, input, size);
    expect(maskIoU(back, mask)).toBeGreaterThan(0.8);
  });
});
