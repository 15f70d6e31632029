import { describe, expect, it } from "vitest";
import type { Annotation, AnnotationInput } from "../../src/api/types";
import { mergedRle, Saver, type AnnotationWrites } from "../../src/annotate/core/saver";
import { AnnotationStore } from "../../src/annotate/core/store";
import { decodeRle, encodeRle } from "../../src/sam/rle";
import { annotation, SIZE } from "./fixtures";

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown = null,
  ) {
    super(`HTTP ${status}`);
  }
}

class Ports implements AnnotationWrites {
  calls: string[] = [];
  fail: unknown = null;
  createAnnotation(projectId: number, imageId: number, body: AnnotationInput): Promise<Annotation> {
    this.calls.push(`create in ${projectId}/${imageId}`);
    return this.fail ? Promise.reject(this.fail) : Promise.resolve({ ...annotation(10, 7), label: body.label ?? null });
  }
  updateAnnotation(projectId: number, id: number, version: number, data: Partial<AnnotationInput>): Promise<Annotation> {
    this.calls.push(`update ${id}@${version} in ${projectId}`);
    return this.fail ? Promise.reject(this.fail) : Promise.resolve({ ...annotation(id, 7, [0], version + 1), label: data.label ?? null });
  }
  deleteAnnotation(projectId: number, id: number, version: number): Promise<void> {
    this.calls.push(`remove ${id}@${version} in ${projectId}`);
    return this.fail ? Promise.reject(this.fail) : Promise.resolve();
  }
}

const mask = (pixels: number[]): Uint8Array => {
  const m = new Uint8Array(12);
  for (const p of pixels) m[p] = 1;
  return m;
};
/** Project 4, image 7 (the fixtures' image). */
const AT = () => ({ projectId: 4, imageId: 7 });
const body = (m: Uint8Array): AnnotationInput => ({ label: 3, rle: encodeRle(m, SIZE.height, SIZE.width), source: "click" });

describe("saver", () => {
  it("creates a new annotation and stores it", async () => {
    const ports = new Ports();
    const store = new AnnotationStore(7);
    const result = await new Saver(ports, AT, store).save(body(mask([1])), mask([1]), null, null);
    expect(result).toMatchObject({ kind: "saved", annotation: { id: 10, label: 3 } });
    expect(ports.calls).toEqual(["create in 4/7"]);
    expect(store.get(10)).toBeDefined();
  });

  it("saves an edit at the version it started from, and a 412 becomes a conflict", async () => {
    const ports = new Ports();
    const store = new AnnotationStore(7);
    store.put(annotation(5, 7, [0], 4)); // a teammate's version 4 arrived live
    const saver = new Saver(ports, AT, store);
    const theirs = annotation(5, 7, [2, 3], 4);
    ports.fail = new HttpError(412, { current: theirs });
    const result = await saver.save(body(mask([1])), mask([1]), 5, 3);
    expect(ports.calls).toEqual(["update 5@3 in 4"]);
    expect(result.kind).toBe("conflict");
    if (result.kind !== "conflict") return;
    expect(result.conflict.current).toEqual(theirs);
    ports.fail = null;
    const merged = await saver.resolve(result.conflict, "merge", SIZE);
    expect(ports.calls.at(-1)).toBe("update 5@4 in 4");
    expect(merged.kind).toBe("saved");
    expect(Array.from(decodeRle(mergedRle(mask([1]), theirs, SIZE))).slice(0, 4)).toEqual([0, 1, 1, 1]);
    expect((await saver.resolve(result.conflict, "mine", SIZE)).kind).toBe("saved");
  });

  it("tells offline from failed, and an edit of a deleted annotation", async () => {
    const ports = new Ports();
    const store = new AnnotationStore(7);
    const saver = new Saver(ports, AT, store);
    ports.fail = new HttpError(0);
    expect(await saver.save(body(mask([1])), mask([1]), null, null)).toEqual({ kind: "offline" });
    ports.fail = new HttpError(400);
    expect(await saver.save(body(mask([1])), mask([1]), null, null)).toEqual({ kind: "failed", error: "HTTP 400" });
    expect(await saver.save(body(mask([1])), mask([1]), 99, 1)).toEqual({ kind: "failed", error: "The annotation was deleted meanwhile." });
    expect(await saver.relabel(99, 1)).toMatchObject({ kind: "failed" });
    ports.fail = "plain";
    store.put(annotation(5, 7));
    expect(await saver.relabel(5, 2)).toEqual({ kind: "failed", error: "plain" });
  });

  it("deletes at the held version, and a teammate's change stops it", async () => {
    const ports = new Ports();
    const store = new AnnotationStore(7);
    const saver = new Saver(ports, AT, store);
    store.put(annotation(5, 7, [0], 2));
    store.put(annotation(6, 7, [0], 1));
    expect(await saver.remove(5)).toEqual({ kind: "deleted" });
    expect(ports.calls).toEqual(["remove 5@2 in 4"]);
    expect(store.get(5)).toBeUndefined();
    expect(await saver.remove(5)).toEqual({ kind: "deleted" });
    ports.fail = new HttpError(412, { current: annotation(6, 7, [0], 2) });
    expect(await saver.remove(6)).toEqual({ kind: "changed" });
    expect(store.get(6)?.data.version).toBe(2);
    ports.fail = new HttpError(500);
    expect(await saver.remove(6)).toEqual({ kind: "failed", error: "HTTP 500" });
  });
});
