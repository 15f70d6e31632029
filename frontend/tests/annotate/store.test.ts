import { describe, expect, it } from "vitest";
import type { ServerEvent } from "../../src/api/events.gen";
import { AnnotationStore } from "../../src/annotate/core/store";
import { annotation, SIZE } from "./fixtures";

const created = (a: ReturnType<typeof annotation>, seq = 1): ServerEvent => ({ event: "annotation.created", payload: { ...a, seq } });

describe("annotation store", () => {
  it("drops a teammate's deletion live, keyed by annotation id", () => {
    const store = new AnnotationStore(7);
    store.apply(created(annotation(1, 7)));
    store.apply(created(annotation(2, 7), 2));
    store.selected = 1;
    const change = store.apply({ event: "annotation.deleted", payload: { id: 1, image: 7, version: 2, seq: 3 } });
    expect(change).toEqual({ kind: "removed", id: 1 });
    expect(store.values().map((a) => a.data.id)).toEqual([2]);
    expect(store.selected).toBeNull();
  });

  it("drops a deletion whose payload names no image (as the server sent before)", () => {
    const store = new AnnotationStore(7);
    store.put(annotation(1, 7));
    const legacy = { event: "annotation.deleted", payload: { id: 1, version: 2, seq: 3 } } as unknown as ServerEvent;
    expect(store.apply(legacy)).toEqual({ kind: "removed", id: 1 });
    expect(store.size).toBe(0);
  });

  it("ignores deletions of annotations it does not hold", () => {
    const store = new AnnotationStore(7);
    store.put(annotation(1, 7));
    expect(store.apply({ event: "annotation.deleted", payload: { id: 9, image: 8, version: 2, seq: 3 } })).toEqual({ kind: "none" });
    expect(store.size).toBe(1);
  });

  it("takes creates and updates of its image only, and only newer versions", () => {
    const store = new AnnotationStore(7);
    expect(store.apply(created(annotation(1, 8)))).toEqual({ kind: "none" });
    expect(store.apply(created(annotation(1, 7, [0], 2)))).toEqual({ kind: "updated", ids: [1] });
    const stale: ServerEvent = { event: "annotation.updated", payload: { ...annotation(1, 7, [0, 1], 1), seq: 4 } };
    expect(store.apply(stale)).toEqual({ kind: "none" });
    const newer: ServerEvent = { event: "annotation.updated", payload: { ...annotation(1, 7, [0, 1], 3), seq: 5 } };
    expect(store.apply(newer)).toEqual({ kind: "updated", ids: [1] });
    expect(store.get(1)?.data.version).toBe(3);
    expect(Array.from(store.get(1)?.mask ?? [])).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("takes a fetched annotation only when it is newer than the one held", () => {
    const store = new AnnotationStore(7);
    store.apply(created(annotation(1, 7, [0], 3)));
    const held = store.get(1);
    expect(store.take(annotation(1, 7, [0, 1], 2))).toBe(false);
    expect(store.take(annotation(1, 7, [0, 1], 3))).toBe(false);
    expect(store.get(1)).toBe(held);
    expect(store.take(annotation(2, 7))).toBe(true);
    expect(store.take(annotation(1, 7, [0, 1], 4))).toBe(true);
    expect(store.get(1)?.data.version).toBe(4);
  });

  it("asks for a reload when many annotations of its image were created at once", () => {
    const store = new AnnotationStore(7);
    const bulk = (images: number[]): ServerEvent => ({ event: "annotations.bulk_created", payload: { count: 3, images, seq: 1 } });
    expect(store.apply(bulk([5, 7]))).toEqual({ kind: "reload" });
    expect(store.apply(bulk([5]))).toEqual({ kind: "none" });
    expect(store.apply({ event: "caught_up", payload: { seq: 1, more: false } })).toEqual({ kind: "none" });
  });

  it("takes a review decision's fields on its image's annotations it names, keeping their masks", () => {
    const store = new AnnotationStore(7);
    store.put(annotation(1, 7, [0, 1], 2));
    store.put(annotation(2, 7, [5], 4));
    const mask = store.get(1)?.mask;
    const decision: ServerEvent = {
      event: "annotations.reviewed",
      payload: {
        review_state: "rejected",
        review_reason: "Too coarse.",
        reviewed_by: 3,
        reviewed_at: "2026-12-05T10:00:00+00:00",
        // 1 is newer here, 2 is already at this version, 9 is another image's.
        annotations: [{ id: 1, image: 7, version: 3 }, { id: 2, image: 7, version: 4 }, { id: 9, image: 8, version: 2 }],
        seq: 6,
      },
    };
    expect(store.apply(decision)).toEqual({ kind: "updated", ids: [1] });
    const reviewed = store.get(1)?.data;
    expect(reviewed).toMatchObject({ review_state: "rejected", review_reason: "Too coarse.", reviewed_by: 3, version: 3 });
    expect(reviewed?.updated_at).toBe("2026-12-05T10:00:00+00:00");
    expect(reviewed).not.toHaveProperty("seq");
    expect(store.get(1)?.mask).toBe(mask);
    expect(store.get(2)?.data.review_state).toBe(annotation(2, 7).review_state);
    expect(store.apply(decision)).toEqual({ kind: "none" });
  });

  it("keeps an annotation whose RLE is malformed, with an empty mask", () => {
    const store = new AnnotationStore(7);
    const broken = { ...annotation(1, 7), rle: { size: [3, 4] as [number, number], counts: "!!" } };
    store.put(broken);
    expect(store.get(1)?.mask.length).toBe(12);
    expect(store.get(1)?.mask.every((v) => v === 0)).toBe(true);
  });

  it("finds the topmost annotation under a point and caches polygons per tolerance", () => {
    const store = new AnnotationStore(7);
    store.put(annotation(1, 7, [0, 1, 4, 5]));
    store.put(annotation(2, 7, [5, 6]));
    expect(store.at(1.5, 1.2, SIZE)).toBe(2);
    expect(store.at(0.2, 0.2, SIZE)).toBe(1);
    expect(store.at(3.5, 2.5, SIZE)).toBeNull();
    expect(store.at(-1, 0, SIZE)).toBeNull();
    const a = store.get(1);
    if (!a) throw new Error("missing");
    const rings = store.polygons(a, SIZE, 0);
    expect(rings.length).toBe(1);
    expect(store.polygons(a, SIZE, 0)).toBe(rings);
    store.open(8);
    expect(store.size).toBe(0);
  });
});
