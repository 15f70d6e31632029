import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { maskBBox } from "../src/sam/masks";
import { countsToString, decodeRle, encodeRle, rleArea, stringToCounts } from "../src/sam/rle";

interface Fixture {
  name: string;
  size: [number, number];
  mask: string;
  counts: string;
  area: number;
  bbox: number[];
}

const fixtures = JSON.parse(
  readFileSync(new URL("./fixtures/rle_fixtures.json", import.meta.url), "utf8"),
) as Fixture[];

function maskOf(f: Fixture): Uint8Array {
  return Uint8Array.from(f.mask, (c) => (c === "1" ? 1 : 0));
}

describe("COCO RLE parity with pycocotools", () => {
  it("has fixtures", () => expect(fixtures.length).toBeGreaterThan(10));
  for (const f of fixtures) {
    it(`encodes ${f.name} exactly like pycocotools`, () => {
      const [h, w] = f.size;
      expect(encodeRle(maskOf(f), h, w)).toEqual({ size: [h, w], counts: f.counts });
    });
    it(`decodes ${f.name} back to the mask`, () => {
      expect(Array.from(decodeRle({ size: f.size, counts: f.counts }))).toEqual(Array.from(maskOf(f)));
    });
    it(`area and bbox of ${f.name} match`, () => {
      expect(rleArea({ size: f.size, counts: f.counts })).toBe(f.area);
      expect(maskBBox(maskOf(f), f.size[1])).toEqual(f.bbox);
    });
  }
  it("round-trips large counts and negative deltas", () => {
    const counts = [0, 5_000_000, 3, 1, 40_000, 2, 123_456_789];
    expect(stringToCounts(countsToString(counts))).toEqual(counts);
  });
  it("rejects a truncated string", () => {
    expect(() => stringToCounts("P")).toThrow();
  });
});
