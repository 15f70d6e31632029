import { describe, expect, it } from "vitest";
import type { ServerEvent } from "../api/events.gen";
import type { Annotation } from "../api/types";
import { applyEvent, bringsUnlisted, filtersFromQuery, filtersToQuery, matches, type ReviewFilters } from "./reviewFilter";

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

  it("a review decision updates the items it names: those that leave the state filter go", () => {
    const items = [ann(1), ann(2), ann(3)];
    const decision = (state: "accepted" | "proposed", annotations: { id: number; image: number; version: number }[]): ServerEvent => ({
      event: "annotations.reviewed",
      payload: { review_state: state, review_reason: "", reviewed_by: 4, reviewed_at: "2026-12-05T10:00:00+00:00", annotations, ...seq },
    });
    const accepted = decision("accepted", [{ id: 1, image: 1, version: 2 }, { id: 9, image: 1, version: 2 }]);
    expect(applyEvent(items, accepted, pending).map((a) => a.id)).toEqual([2, 3]);
    const kept = applyEvent([ann(1)], accepted, { ...pending, review_state: "accepted" });
    expect(kept).toEqual([{ ...ann(1), review_state: "accepted", reviewed_by: 4, version: 2, reviewed_at: "2026-12-05T10:00:00+00:00", updated_at: "2026-12-05T10:00:00+00:00" }]);
    const stale = decision("proposed", [{ id: 2, image: 1, version: 1 }]);
    expect(applyEvent(items, stale, pending)).toBe(items);
    const reasoned = decision("proposed", [{ id: 2, image: 1, version: 2 }]);
    expect(applyEvent(items, reasoned, pending).find((a) => a.id === 2)).toMatchObject({ version: 2, reviewed_by: 4 });
  });

  it("a review decision into the filtered state asks for the unlisted annotations it names", () => {
    const items = [ann(1)];
    const payload = { review_reason: "", reviewed_by: 4, reviewed_at: "2026-12-05T10:00:00+00:00", ...seq };
    const accepted: ServerEvent = { event: "annotations.reviewed", payload: { ...payload, review_state: "accepted", annotations: [{ id: 5, image: 2, version: 3 }] } };
    const accepting = { ...pending, review_state: "accepted" as const };
    expect(bringsUnlisted(items, accepted, accepting)).toBe(true);
    expect(bringsUnlisted(items, accepted, { ...accepting, image: 1 })).toBe(false);
    expect(bringsUnlisted(items, accepted, pending)).toBe(false);
    const listed: ServerEvent = { event: "annotations.reviewed", payload: { ...payload, review_state: "proposed", annotations: [{ id: 1, image: 1, version: 2 }] } };
    expect(bringsUnlisted(items, listed, pending)).toBe(false);
    expect(bringsUnlisted(items, { event: "annotation.created", payload: { ...ann(4), ...seq } }, pending)).toBe(false);
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
