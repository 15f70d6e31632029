/** The annotations of the open image, kept in step with the server's events.
 *
 * Entries are keyed by annotation id. A deletion removes the id wherever it came from: the
 * event's `image` is not needed to find it, and an id this store does not hold is ignored.
 * Creates, updates and review decisions are taken only for this image and only when newer than
 * what is held. */
import type { AnnotationsReviewedPayload, ServerEvent } from "../../api/events.gen";
import type { Annotation } from "../../api/types";
import { reviewOf } from "../../realtime/reviewed";
import { maskToPolygons, type Ring } from "../../sam/masks";
import type { Size } from "../../sam/prompts";
import { decodeRle } from "../../sam/rle";

export interface StoredAnnotation {
  data: Annotation;
  /** Row-major 0/1 mask at the image's size. */
  mask: Uint8Array;
  /** Polygons per simplification tolerance (hundredths of a pixel). */
  polygons: Map<number, Ring[]>;
}

export type StoreChange =
  | { kind: "none" }
  /** Stored anew (a create or an update) or given a review decision (its fields, not the mask). */
  | { kind: "updated"; ids: number[] }
  | { kind: "removed"; id: number }
  /** Many annotations of this image were created at once: list them again. */
  | { kind: "reload" };

const NONE: StoreChange = { kind: "none" };

export class AnnotationStore {
  private readonly items = new Map<number, StoredAnnotation>();
  selected: number | null = null;

  constructor(private imageId = 0) {}

  /** Empty the store for another image. */
  open(imageId: number): void {
    this.imageId = imageId;
    this.items.clear();
    this.selected = null;
  }

  get size(): number {
    return this.items.size;
  }

  get(id: number): StoredAnnotation | undefined {
    return this.items.get(id);
  }

  values(): StoredAnnotation[] {
    return [...this.items.values()];
  }

  /** Store `a` (a malformed RLE from an import keeps the row, with an empty mask). */
  put(a: Annotation): void {
    let mask: Uint8Array;
    try {
      mask = decodeRle(a.rle);
    } catch {
      mask = new Uint8Array(a.rle.size[0] * a.rle.size[1]);
    }
    this.items.set(a.id, { data: a, mask, polygons: new Map() });
  }

  /** Store `a` unless this version of it or a newer one is held (a list fetched while events
   * arrived may be older than what they brought); says whether it did. */
  take(a: Annotation): boolean {
    const known = this.items.get(a.id);
    if (known && known.data.version >= a.version) return false;
    this.put(a);
    return true;
  }

  remove(id: number): boolean {
    if (this.selected === id) this.selected = null;
    return this.items.delete(id);
  }

  /** Apply a server event; says what changed. */
  apply(event: ServerEvent): StoreChange {
    switch (event.event) {
      case "annotation.created":
      case "annotation.updated": {
        const a = event.payload;
        return a.image === this.imageId && this.take(a) ? { kind: "updated", ids: [a.id] } : NONE;
      }
      case "annotation.deleted":
        return this.remove(event.payload.id) ? { kind: "removed", id: event.payload.id } : NONE;
      case "annotations.bulk_created":
        return event.payload.images.includes(this.imageId) ? { kind: "reload" } : NONE;
      case "annotations.reviewed":
        return this.review(event.payload);
      default:
        return NONE;
    }
  }

  /** Take a review decision's fields on the annotations it names, where newer. */
  private review(decision: AnnotationsReviewedPayload): StoreChange {
    const reviewed = reviewOf(decision);
    const ids: number[] = [];
    for (const held of this.items.values()) {
      const next = reviewed(held.data);
      if (!next) continue;
      held.data = next;
      ids.push(next.id);
    }
    return ids.length > 0 ? { kind: "updated", ids } : NONE;
  }

  /** The topmost annotation with a pixel at (x, y). */
  at(x: number, y: number, size: Size): number | null {
    const xi = Math.floor(x);
    const yi = Math.floor(y);
    if (xi < 0 || yi < 0 || xi >= size.width || yi >= size.height) return null;
    for (const a of this.values().reverse()) if (a.mask[yi * size.width + xi]) return a.data.id;
    return null;
  }

  /** The polygons of `a` at a simplification tolerance, computed once per tolerance. */
  polygons(a: StoredAnnotation, size: Size, tolerance: number): Ring[] {
    const key = Math.round(tolerance * 100);
    let rings = a.polygons.get(key);
    if (!rings) {
      rings = maskToPolygons(a.mask, size, tolerance);
      a.polygons.set(key, rings);
    }
    return rings;
  }
}
