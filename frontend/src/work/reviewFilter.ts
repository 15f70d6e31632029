/** The review list's filters, applied to the annotations the room's events bring: an
 * annotation enters, stays or leaves the list as a teammate's change makes it match. */
import type { ServerEvent } from "../api/events.gen";
import type { Annotation, ReviewState } from "../api/types";
import { reviewOf } from "../realtime/reviewed";

export interface ReviewFilters {
  review_state: ReviewState;
  author: number | "";
  label: number | "";
  image: number | "";
}

export function matches(a: Annotation, f: ReviewFilters): boolean {
  return (
    a.review_state === f.review_state &&
    (f.author === "" || a.author === f.author) &&
    (f.label === "" || a.label === f.label) &&
    (f.image === "" || a.image === f.image)
  );
}

/** The list after `event` (the same array when the event does not touch it); ordered by id
 * as the server lists it. */
export function applyEvent(items: Annotation[], event: ServerEvent, f: ReviewFilters): Annotation[] {
  if (event.event === "annotations.reviewed") {
    const reviewed = reviewOf(event.payload);
    const next: Annotation[] = [];
    let changed = false;
    for (const a of items) {
      const copy = reviewed(a);
      changed ||= copy !== null;
      if (!copy) next.push(a);
      else if (matches(copy, f)) next.push(copy);
    }
    return changed ? next : items;
  }
  if (event.event === "annotation.deleted") {
    const id = event.payload.id;
    return items.some((a) => a.id === id) ? items.filter((a) => a.id !== id) : items;
  }
  if (event.event !== "annotation.created" && event.event !== "annotation.updated") return items;
  const a = event.payload;
  const rest = items.filter((x) => x.id !== a.id);
  if (!matches(a, f)) return rest.length === items.length ? items : rest;
  return [...rest, a].sort((x, y) => x.id - y.id);
}

/** Whether `event` may bring into the list annotations that it does not carry: a review
 * decision names the annotations it changed, not their author or label, so the unlisted ones
 * it moves into the filtered state must be fetched. */
export function bringsUnlisted(items: Annotation[], event: ServerEvent, f: ReviewFilters): boolean {
  if (event.event !== "annotations.reviewed" || event.payload.review_state !== f.review_state) return false;
  const listed = new Set(items.map((a) => a.id));
  return event.payload.annotations.some((r) => !listed.has(r.id) && (f.image === "" || r.image === f.image));
}

/** Parse a filter from the page's query string (unknown values fall back to the defaults). */
export function filtersFromQuery(search: string): ReviewFilters {
  const q = new URLSearchParams(search);
  const state = q.get("review_state");
  const id = (name: string): number | "" => {
    const n = Number(q.get(name));
    return Number.isInteger(n) && n > 0 ? n : "";
  };
  return {
    review_state: state === "accepted" || state === "rejected" ? state : "proposed",
    author: id("author"),
    label: id("label"),
    image: id("image"),
  };
}

export function filtersToQuery(f: ReviewFilters): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== "" && !(k === "review_state" && v === "proposed")) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
