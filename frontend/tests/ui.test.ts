import { describe, expect, it } from "vitest";
import { History } from "../src/annotate/core/history";
import { parseRoute } from "../src/ui/router";
import { hexToRgb, paintMask, paintMaskInBox } from "../src/ui/colors";
import { clickX, lossPoints, miouPoints, miouY } from "../src/ui/plots";

describe("undo / redo history", () => {
  it("undoes and redoes steps, and a new step drops the redo branch", () => {
    const h = new History<number>(0);
    h.push(1);
    h.push(2);
    expect(h.undo()).toBe(1);
    expect(h.undo()).toBe(0);
    expect(h.undo()).toBeNull();
    expect(h.redo()).toBe(1);
    h.push(5);
    expect(h.canRedo).toBe(false);
    expect(h.current).toBe(5);
    h.replace(6);
    expect(h.undo()).toBe(1);
    expect(h.redo()).toBe(6);
  });
  it("is bounded", () => {
    const h = new History<number>(0, 3);
    for (let i = 1; i <= 10; i++) h.push(i);
    let steps = 0;
    while (h.undo() !== null) steps++;
    expect(steps).toBe(3);
  });
});

describe("routes", () => {
  it("parses every page", () => {
    expect(parseRoute("/")).toEqual({ page: "projects" });
    expect(parseRoute("/projects/3")).toEqual({ page: "images", projectId: 3 });
    expect(parseRoute("/projects/3/images/9")).toEqual({ page: "workspace", projectId: 3, imageId: 9 });
    expect(parseRoute("/projects/3/review")).toEqual({ page: "review", projectId: 3 });
    expect(parseRoute("/projects/3/queue")).toEqual({ page: "queue", projectId: 3 });
    expect(parseRoute("/projects/x/review")).toEqual({ page: "notFound" });
    expect(parseRoute("/elsewhere")).toEqual({ page: "notFound" });
  });
});

describe("colours", () => {
  it("parses hex colours and paints masks", () => {
    expect(hexToRgb("#ff8000")).toEqual([255, 128, 0]);
    expect(hexToRgb("bad")).toEqual([255, 64, 64]);
    const rgba = new Uint8ClampedArray(8);
    paintMask(rgba, Uint8Array.from([0, 1]), [1, 2, 3], 200);
    expect(Array.from(rgba)).toEqual([0, 0, 0, 0, 1, 2, 3, 200]);
  });
  it("paints only inside the box", () => {
    const mask = Uint8Array.from([1, 1, 1, 1]); // 2x2
    const rgba = new Uint8ClampedArray(16);
    paintMaskInBox(rgba, mask, 2, [1, 0, 1, 2], [9, 9, 9]);
    expect(Array.from(rgba.filter((_, i) => i % 4 === 3))).toEqual([0, 255, 0, 255]);
  });
});

describe("models page plots", () => {
  const box = { width: 108, height: 58, pad: 4 };
  it("places mIoU after 1, 3 and 5 clicks left to right, 1.0 at the top", () => {
    expect(miouPoints({ miou_1: 0, miou_3: 0.5, miou_5: 1 }, box)).toBe("4.0,54.0 54.0,29.0 104.0,4.0");
    expect(clickX(3, box)).toBe(54);
    expect(miouY(2, box)).toBe(4); // clamped
  });
  it("skips missing values and needs two loss points", () => {
    expect(miouPoints({ miou_1: 0.5 }, box)).toBe("4.0,29.0");
    expect(lossPoints([1], box)).toBe("");
    expect(lossPoints([2, Number.NaN, 1], box)).toBe("4.0,4.0 104.0,54.0");
  });
  it("routes /projects/7/models to the models page", () => {
    expect(parseRoute("/projects/7/models")).toEqual({ page: "models", projectId: 7 });
  });
});
