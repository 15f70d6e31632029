import { describe, expect, it } from "vitest";
import { clampTo, inside, Viewport } from "../../src/annotate/core/viewport";
import { BINDINGS, commandFor, HELP_ROWS } from "../../src/annotate/core/keys";

describe("viewport", () => {
  it("fits, maps both ways, zooms about the cursor and pans", () => {
    const v = new Viewport();
    expect(v.pristine).toBe(true);
    v.fit({ width: 200, height: 100 }, { width: 400, height: 100 });
    expect(v.scale).toBeCloseTo(0.475);
    expect(v.toImage(...v.toScreen(10, 20))).toEqual([10, 20]);
    const before = v.toImage(50, 50);
    v.zoomAt(50, 50, -100, 0);
    expect(v.scale).toBeGreaterThan(0.475);
    const after = v.toImage(50, 50);
    expect(after[0]).toBeCloseTo(before[0]);
    expect(after[1]).toBeCloseTo(before[1]);
    v.zoomAt(0, 0, 1e6, 1);
    expect(v.scale).toBe(0.02);
    v.panFrom({ tx: 1, ty: 2 }, 10, 20);
    expect([v.tx, v.ty]).toEqual([11, 22]);
    v.fit({ width: 10, height: 10 }, { width: 0, height: 0 });
    expect([v.tx, v.ty]).toEqual([11, 22]);
  });

  it("finds the polygon vertex under the pointer", () => {
    const v = new Viewport();
    v.scale = 2;
    const rings = [[0, 0, 10, 0, 10, 10], [20, 20, 30, 20, 30, 30]];
    expect(v.vertexAt(rings, 21, 1)).toEqual({ ring: 0, vertex: 1 });
    expect(v.vertexAt(rings, 19, 21)).toEqual({ ring: 0, vertex: 2 });
    expect(v.vertexAt(rings, 61, 41)).toEqual({ ring: 1, vertex: 1 });
    expect(v.vertexAt(rings, 100, 100)).toBeNull();
  });

  it("clamps and tests points against the image", () => {
    const size = { width: 4, height: 3 };
    expect(inside(size, 3.9, 2.9)).toBe(true);
    expect(inside(size, 4, 0)).toBe(false);
    expect(clampTo(size, -1, 9)).toEqual([0, 3]);
  });
});

describe("keyboard commands", () => {
  const key = (k: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean }> = {}) =>
    commandFor({ key: k, ctrlKey: false, metaKey: false, shiftKey: false, ...mods });

  it("maps keys to commands", () => {
    expect(key("Enter")).toBe("accept");
    expect(key("a")).toBe("accept");
    expect(key("2")).toBe("candidate-2");
    expect(key("z", { ctrlKey: true })).toBe("undo");
    expect(key("Z", { ctrlKey: true, shiftKey: true })).toBe("redo");
    expect(key("y", { metaKey: true })).toBe("redo");
    expect(key("z")).toBeNull();
    expect(key("b", { ctrlKey: true })).toBeNull();
    expect(key("g")).toBe("segment-everything");
    expect(key("PageDown")).toBe("next-image");
    expect(key("x")).toBeNull();
  });

  it("gives every command a distinct key and a label", () => {
    const seen = new Map<string, string>();
    for (const [command, binding] of Object.entries(BINDINGS)) {
      expect(binding.label).not.toBe("");
      for (const k of binding.keys) {
        const id = `${binding.mod ? "mod+" : ""}${binding.shift ? "shift+" : ""}${k}`;
        expect(seen.get(id), `${id} bound twice`).toBeUndefined();
        seen.set(id, command);
      }
    }
    expect(HELP_ROWS.length).toBeGreaterThan(10);
  });
});
