/** Saving annotations with optimistic concurrency: a create, or a PATCH / DELETE with the
 * version the edit started from (If-Match). A 412 stores the server's version and becomes a
 * conflict to resolve (keep mine, keep theirs, merge); no network keeps the mask for later. */
import type { Annotation, AnnotationInput } from "../../api/types";
import type { Size } from "../../sam/prompts";
import { decodeRle, encodeRle } from "../../sam/rle";
import type { AnnotationStore } from "./store";

/** The annotation writes of the REST client (`api/client.ts` is one). */
export interface AnnotationWrites {
  createAnnotation(projectId: number, imageId: number, body: AnnotationInput): Promise<Annotation>;
  updateAnnotation(projectId: number, id: number, version: number, data: Partial<AnnotationInput>): Promise<Annotation>;
  deleteAnnotation(projectId: number, id: number, version: number): Promise<unknown>;
}

/** The project and image the saved annotations belong to. */
export type SaveTarget = () => { projectId: number; imageId: number };

export interface Conflict {
  mine: Partial<AnnotationInput>;
  mineMask: Uint8Array | null;
  current: Annotation;
}

export type SaveOutcome =
  | { kind: "saved"; annotation: Annotation }
  | { kind: "conflict"; conflict: Conflict }
  | { kind: "offline" }
  | { kind: "failed"; error: string };

export type DeleteOutcome = { kind: "deleted" } | { kind: "changed" } | { kind: "failed"; error: string };

/** The HTTP status of a failed request (0: no network), or null for other errors. */
function statusOf(error: unknown): number | null {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : null;
}

/** The server's current version sent with a 412. */
function currentOf(error: unknown): Annotation | null {
  if (statusOf(error) !== 412) return null;
  const body = (error as { body?: unknown }).body as { current?: Annotation } | null;
  return body?.current ?? null;
}

function failure(error: unknown): SaveOutcome {
  if (statusOf(error) === 0) return { kind: "offline" };
  return { kind: "failed", error: error instanceof Error ? error.message : String(error) };
}

/** The union of my mask and theirs, as an RLE. */
export function mergedRle(mine: Uint8Array, theirs: Annotation, size: Size): AnnotationInput["rle"] {
  const other = decodeRle(theirs.rle);
  const merged = mine.slice();
  for (let i = 0; i < merged.length; i++) if (other[i]) merged[i] = 1;
  return encodeRle(merged, size.height, size.width);
}

export class Saver {
  constructor(
    private readonly api: AnnotationWrites,
    private readonly at: SaveTarget,
    private readonly store: AnnotationStore,
  ) {}

  /** PATCH `base` at its version; a 412 stores the server's version and is a conflict. */
  async patch(base: Annotation, data: Partial<AnnotationInput>, mask: Uint8Array | null): Promise<SaveOutcome> {
    try {
      const annotation = await this.api.updateAnnotation(this.at().projectId, base.id, base.version, data);
      this.store.put(annotation);
      return { kind: "saved", annotation };
    } catch (error) {
      const current = currentOf(error);
      if (!current) return failure(error);
      this.store.put(current);
      return { kind: "conflict", conflict: { mine: data, mineMask: mask, current } };
    }
  }

  /** Save a new annotation, or the one being edited at the version the edit started from: a
   * teammate's change made meanwhile (even one already shown live) is a conflict, never an
   * overwrite. */
  async save(body: AnnotationInput, mask: Uint8Array, editing: number | null, baseVersion: number | null): Promise<SaveOutcome> {
    if (editing === null) {
      try {
        const { projectId, imageId } = this.at();
        const annotation = await this.api.createAnnotation(projectId, imageId, body);
        this.store.put(annotation);
        return { kind: "saved", annotation };
      } catch (error) {
        return failure(error);
      }
    }
    const existing = this.store.get(editing);
    if (!existing) return { kind: "failed", error: "The annotation was deleted meanwhile." };
    const base = { ...existing.data, version: baseVersion ?? existing.data.version };
    const { label, rle, predicted_iou, source, prompts } = body;
    return this.patch(base, { label, rle, predicted_iou, source, prompts }, mask);
  }

  /** Keep my version or the union over the server's current one. */
  resolve(conflict: Conflict, choice: "mine" | "merge", size: Size): Promise<SaveOutcome> {
    let data = conflict.mine;
    if (choice === "merge" && conflict.mineMask) {
      const rle = mergedRle(conflict.mineMask, conflict.current, size);
      data = { ...data, rle, label: data.label ?? conflict.current.label };
    }
    return this.patch(conflict.current, data, conflict.mineMask);
  }

  relabel(id: number, label: number | null): Promise<SaveOutcome> {
    const a = this.store.get(id);
    if (!a) return Promise.resolve({ kind: "failed", error: "The annotation was deleted meanwhile." });
    return this.patch(a.data, { label }, null);
  }

  async remove(id: number): Promise<DeleteOutcome> {
    const a = this.store.get(id);
    if (!a) return { kind: "deleted" };
    try {
      await this.api.deleteAnnotation(this.at().projectId, id, a.data.version);
      this.store.remove(id);
      return { kind: "deleted" };
    } catch (error) {
      const current = currentOf(error);
      if (current) {
        this.store.put(current);
        return { kind: "changed" };
      }
      return { kind: "failed", error: error instanceof Error ? error.message : String(error) };
    }
  }
}
