import { describe, expect, it } from "vitest";
import type { ServerEvent } from "../api/events.gen";
import type { Annotation } from "../api/types";
import { applyEvent, filtersFromQuery, filtersToQuery, matches, type ReviewFilters } from "./reviewFilter";

function ann(id: number, over: Partial<Annotation> = {}): Annotation {
  return {
    id, image: 1, label: 5, rle: { size: [2, 2], counts: "04" }, bbox: [0, 0, 2, 2], area: 4, predicted_iou: null,
    source: "click", prompts: {}, model_key: "sam_tiny", author: 7, version: 1, review_state: "proposed",
    review_reason: "", reviewed_by: null, reviewed_at: null, created_at: "", updated_at: "", ...over,
  };
}
const seq = { seq: 1 };
const pending: ReviewFilters = { review_state: "proposed", author: "", label: "", image: "" };

describe("review filters", () => {
  it("match on every given filter", () => {
    expect(matches(ann(1), pending)).toBe(true);
    expect(matches(ann(1), { ...pending, author: 8 })).toBe(false);
    expect(matches(ann(1), { ...pending, author: 7, label: 5, image: 1 })).toBe(true);
    expect(matches(ann(1, { review_state: "rejected" }), pending)).toBe(false);
  });

  it("an update that stops matching removes the item; one that starts matching adds it in id order", () => {
    const items = [ann(1), ann(3)];
    const rejected: ServerEvent = { event: "annotation.updated", payload: { ...ann(1, { review_state: "rejected" }), ...seq } };
    expect(applyEvent(items, rejected, pending).map((a) => a.id)).toEqual([3]);
    const created: ServerEvent = { event: "annotation.created", payload: { ...ann(2), ...seq } };
    expect(applyEvent(items, created, pending).map((a) => a.id)).toEqual([1, 2, 3]);
    const other: ServerEvent = { event: "annotation.created", payload: { ...ann(4, { author: 9 }), ...seq } };
    expect(applyEvent(items, other, { ...pending, author: 7 })).toBe(items);
  });

  it("an update in place replaces the item", () => {
    const items = [ann(1)];
    const relabelled: ServerEvent = { event: "annotation.updated", payload: { ...ann(1, { label: 6, version: 2 }), ...seq } };
    expect(applyEvent(items, relabelled, pending)[0]?.label).toBe(6);
  });

  it("a deletion removes the item by id (the payload holds no filterable fields)", () => {
    const items = [ann(1), ann(2)];
    const deleted: ServerEvent = { event: "annotation.deleted", payload: { id: 2, image: 1, version: 3, ...seq } };
    expect(applyEvent(items, deleted, pending).map((a) => a.id)).toEqual([1]);
  });

  it("round-trip through the query string, ignoring junk", () => {
    const f: ReviewFilters = { review_state: "rejected", author: 7, label: "", image: 3 };
    expect(filtersFromQuery(filtersToQuery(f))).toEqual(f);
    expect(filtersFromQuery("?review_state=bogus&author=-1&label=x")).toEqual(pending);
    expect(filtersToQuery(pending)).toBe("");
  });
});
