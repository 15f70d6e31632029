import { describe, expect, it } from "vitest";
import type { SegmentJob } from "../api/types";
import { clampOption, exportRequest, optionStep, segmentOutcome, type ExportForm } from "./jobs";

const base: ExportForm = { choice: "coco-rle", tolerance: 1, valSplit: 0, status: [], labels: [], reviewStates: [], includeImages: true };

function job(over: Partial<SegmentJob>): SegmentJob {
  return { kind: "segment", id: 1, image: 1, state: "done", progress: 1, error: "", annotations: 0, options: { pred_iou_thresh: 0.88 }, summary: "", ...over };
}

describe("export requests", () => {
  it("COCO RLE sends no polygon options and no empty filters", () => {
    expect(exportRequest(base)).toEqual({ format: "coco", options: { include_images: true } });
  });

  it("COCO polygons send the tolerance; split and filters when set", () => {
    const body = exportRequest({ ...base, choice: "coco-polygons", tolerance: 2, valSplit: 0.2, labels: [3], reviewStates: ["accepted"] });
    expect(body).toEqual({
      format: "coco",
      options: { include_images: true, mask_format: "polygons", tolerance: 2, val_split: 0.2, filters: { labels: [3], review_states: ["accepted"] } },
    });
  });

  it("formats without a split do not send one", () => {
    expect(exportRequest({ ...base, choice: "png", valSplit: 0.3 }).options.val_split).toBeUndefined();
    expect(exportRequest({ ...base, choice: "unknown" }).format).toBe("coco");
  });
});

describe("job options", () => {
  const points = { kind: "int" as const, min: 1, max: 64, default: 32 };
  const iou = { kind: "float" as const, min: 0, max: 1, default: 0.88 };
  it("holds values within the announced bounds", () => {
    expect(clampOption(100, points)).toBe(64);
    expect(clampOption(0, points)).toBe(1);
    expect(clampOption(7.6, points)).toBe(8);
    expect(clampOption(-0.5, iou)).toBe(0);
    expect(clampOption(Number.NaN, iou)).toBe(0.88);
    expect(optionStep(points)).toBe(1);
    expect(optionStep(iou)).toBe(0.01);
    expect(optionStep({ kind: "float", min: 0, max: 50, default: 1 })).toBe(0.1);
  });
});

describe("segment outcome", () => {
  it("says 0 kept with the threshold to lower, never ready", () => {
    const text = segmentOutcome([job({})]);
    expect(text).toBe("0 masks kept — try a lower predicted-IoU threshold (now 0.88).");
    expect(text).not.toContain("ready");
  });
  it("counts the proposals of every finished job", () => {
    expect(segmentOutcome([job({ annotations: 3 }), job({ annotations: 1 })])).toBe("4 proposals ready to review.");
    expect(segmentOutcome([job({ annotations: 1 })])).toBe("1 proposal ready to review.");
  });
  it("reports failures and says nothing for running jobs", () => {
    expect(segmentOutcome([job({ state: "failed", error: "boom" })])).toBe("1 failed: boom");
    expect(segmentOutcome([job({ state: "running" })])).toBe("");
  });
});
