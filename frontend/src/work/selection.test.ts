import { describe, expect, it } from "vitest";
import { Selection } from "./selection";

const order = [10, 11, 12, 13, 14];

describe("Selection", () => {
  it("toggles one id per click", () => {
    const s = new Selection();
    s.click(11, order);
    s.click(13, order);
    expect(s.ids().sort()).toEqual([11, 13]);
    s.click(11, order);
    expect(s.ids()).toEqual([13]);
  });

  it("picks the range from the anchor on shift-click, in either direction", () => {
    const s = new Selection();
    s.click(13, order);
    s.click(10, order, true);
    expect(s.ids().sort()).toEqual([10, 11, 12, 13]);
    const t = new Selection();
    t.click(11, order);
    t.click(14, order, true);
    expect(t.ids().sort()).toEqual([11, 12, 13, 14]);
  });

  it("a range from an unpicked anchor unpicks", () => {
    const s = new Selection();
    s.selectAll(order);
    s.click(12, order); // unpicks 12, anchor 12
    s.click(14, order, true);
    expect(s.ids().sort()).toEqual([10, 11]);
  });

  it("shift-click without an anchor toggles one", () => {
    const s = new Selection();
    s.click(12, order, true);
    expect(s.ids()).toEqual([12]);
  });

  it("select all, none, and forgetting ids no longer shown", () => {
    const s = new Selection();
    s.selectAll(order);
    expect(s.size).toBe(5);
    s.keepOnly([10, 11]);
    expect(s.ids().sort()).toEqual([10, 11]);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.has(10)).toBe(false);
  });
});
