import { describe, expect, it } from "vitest";
import { EMPTY, PromptSession, iouScore, type DecoderPort, type SentDecode } from "../../src/annotate/core/session";
import type { Prompt, Size } from "../../src/sam/prompts";
import type { ResponseFor } from "../../src/sam/protocol";

const TARGET = { embeddingKey: "emb", outSize: { width: 2, height: 2 } };
const FULL = { width: 4, height: 4 };

interface Call {
  kind: "decode" | "preview";
  prompt: Prompt;
  maskInput: Float32Array | null;
  resolve: (reply: ResponseFor<"decode">) => void;
}

/** A decoder whose replies the test sends when it wants. */
class FakeDecoder implements DecoderPort {
  calls: Call[] = [];
  adopted: number[] = [];
  cancels = 0;
  renders: { decodeId: number; index: number; outSize: Size }[] = [];
  renderReply: ResponseFor<"render"> | null = null;
  private nextId = 1;

  private send(kind: Call["kind"], prompt: Prompt, maskInput: Float32Array | null): SentDecode {
    const id = this.nextId++;
    const reply = new Promise<ResponseFor<"decode">>((resolve) => this.calls.push({ kind, prompt, maskInput, resolve }));
    return { id, reply };
  }
  decode(_key: string, prompt: Prompt, maskInput: Float32Array | null): SentDecode {
    return this.send("decode", prompt, maskInput);
  }
  preview(_key: string, prompt: Prompt): SentDecode {
    return this.send("preview", prompt, null);
  }
  adopt(id: number): void {
    this.adopted.push(id);
  }
  cancelPreviews(): void {
    this.cancels++;
  }
  render(decodeId: number, index: number, outSize: Size): Promise<ResponseFor<"render">> {
    this.renders.push({ decodeId, index, outSize });
    return Promise.resolve(this.renderReply ?? { id: 0, action: "render", ok: false, error: "gone" });
  }
}

/** A decode reply: candidate i has mask [i, i, i, i] (i + 1 for 0) and IoU 0.5 + i / 10. */
function reply(id: number, indices = [1, 2, 3], preselected = 2, rendered = true): ResponseFor<"decode"> {
  return {
    id,
    action: "decode",
    ok: true,
    candidates: indices.map((index) => ({ index, iou: 0.5 + index / 10, mask: rendered || index === preselected ? new Uint8Array(4).fill(index) : null })),
    preselected,
    outSize: { width: 2, height: 2 },
    lowRes: Float32Array.from({ length: 4 * 4 }, (_, i) => i),
    lowSide: 2,
    decodeMs: 3,
    runMs: 2,
  };
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("prompt session", () => {
  it("decodes a click, preselects SAM's choice, and refines with the previous logits", async () => {
    const decoder = new FakeDecoder();
    const session = new PromptSession(decoder);
    const first = session.addPoint({ x: 1, y: 1, label: 1 }, TARGET);
    decoder.calls[0]?.resolve(reply(1));
    expect(await first).toEqual({ kind: "decoded", decodeMs: 3, runMs: 2 });
    expect(session.state.selected).toBe(1);
    expect(session.current(FULL)).toEqual({ mask: new Uint8Array(4).fill(2), size: { width: 2, height: 2 }, iou: 0.7 });
    const second = session.addPoint({ x: 0, y: 0, label: 0 }, TARGET);
    await flush();
    // The selected candidate (index 2) of the previous decode is the mask input.
    expect(Array.from(decoder.calls[1]?.maskInput ?? [])).toEqual([8, 9, 10, 11]);
    expect(decoder.calls[1]?.prompt.points.length).toBe(2);
    decoder.calls[1]?.resolve(reply(2, [0, 1, 2], 0));
    await second;
    expect(session.current(FULL)?.mask[0]).toBe(0);
    expect(session.undo()).toBe(true);
    expect(session.state.points.length).toBe(1);
    expect(session.redo()).toBe(true);
    expect(session.canUndo).toBe(true);
    expect(session.canRedo).toBe(false);
  });

  it("drops a result that arrives after the prompt changed, and reports failures", async () => {
    const decoder = new FakeDecoder();
    const session = new PromptSession(decoder);
    const late = session.addPoint({ x: 1, y: 1, label: 1 }, TARGET);
    expect(session.clear()).toBe(true);
    decoder.calls[0]?.resolve(reply(1));
    expect(await late).toEqual({ kind: "stale" });
    expect(session.state).toBe(EMPTY);
    expect(session.clear()).toBe(false);
    const failing = session.setBox([3, 3, 0, 0], TARGET);
    expect(session.state.box).toEqual([0, 0, 3, 3]);
    decoder.calls[1]?.resolve({ id: 2, action: "decode", ok: false, error: "boom" });
    expect(await failing).toEqual({ kind: "failed", error: "boom" });
    const cancelled = session.addPoint({ x: 1, y: 1, label: 1 }, TARGET);
    decoder.calls[2]?.resolve({ id: 3, action: "decode", ok: false, error: "cancelled", cancelled: true });
    expect(await cancelled).toEqual({ kind: "stale" });
  });

  it("reports a dead worker as a failed decode", async () => {
    const session = new PromptSession({
      ...new FakeDecoder(),
      decode: () => ({ id: 1, reply: Promise.reject(new Error("the decoder worker stopped")) }),
      cancelPreviews: () => undefined,
    } as unknown as DecoderPort);
    expect(await session.addPoint({ x: 1, y: 1, label: 1 }, TARGET)).toEqual({ kind: "failed", error: "the decoder worker stopped" });
  });

  it("shows a hover preview and lets the click on that point adopt it", async () => {
    const decoder = new FakeDecoder();
    const session = new PromptSession(decoder);
    const preview = session.preview({ x: 2, y: 2, label: 1 }, TARGET);
    decoder.calls[0]?.resolve(reply(1));
    expect(await preview).toEqual({ mask: new Uint8Array(4).fill(2), size: { width: 2, height: 2 } });
    const click = session.addPoint({ x: 2.2, y: 2.1, label: 1 }, TARGET);
    expect(await click).toMatchObject({ kind: "decoded" });
    expect(decoder.adopted).toEqual([1]);
    expect(decoder.calls.length).toBe(1);
    // A preview answered after a click is not shown.
    const hidden = session.preview({ x: 0, y: 0, label: 1 }, TARGET);
    decoder.calls[1]?.resolve(reply(2));
    expect(await hidden).toBeNull();
  });

  it("renders a candidate that was not rendered before showing it", async () => {
    const decoder = new FakeDecoder();
    const session = new PromptSession(decoder);
    const click = session.addPoint({ x: 1, y: 1, label: 1 }, TARGET);
    decoder.calls[0]?.resolve(reply(1, [1, 2, 3], 2, false));
    await click;
    expect(await session.selectCandidate(9)).toBe(false);
    expect(await session.selectCandidate(0)).toBe(false); // the render failed
    decoder.renderReply = { id: 5, action: "render", ok: true, mask: new Uint8Array(4).fill(7), outSize: { width: 2, height: 2 } };
    expect(await session.selectCandidate(0)).toBe(true);
    expect(decoder.renders[1]).toEqual({ decodeId: 1, index: 1, outSize: { width: 2, height: 2 } });
    expect(session.current(FULL)?.mask[0]).toBe(7);
    // Saving at full size renders the selected candidate again at the image's size.
    decoder.renderReply = { id: 6, action: "render", ok: true, mask: new Uint8Array(16).fill(1), outSize: FULL };
    expect((await session.fullMask(FULL, () => new Uint8Array(0)))?.length).toBe(16);
    decoder.renderReply = null;
    expect((await session.fullMask(FULL, () => new Uint8Array(3)))?.length).toBe(3);
    expect(await session.fullMask({ width: 2, height: 2 }, () => new Uint8Array(0))).toEqual(new Uint8Array(4).fill(7));
  });

  it("edits an annotation by hand and records the prompt of a save", () => {
    const session = new PromptSession(new FakeDecoder());
    expect(session.current(FULL)).toBeNull();
    session.edit(4, 3, new Uint8Array(16));
    expect(session.state).toMatchObject({ editing: 4, baseVersion: 3 });
    const painted = new Uint8Array(16).fill(1);
    session.paint(painted);
    expect(session.current(FULL)).toEqual({ mask: painted, size: FULL, iou: null });
    expect(session.promptRecord()).toEqual({ prompts: { points: [], labels: [], box: null }, source: "manual" });
    session.reset();
    expect(session.empty).toBe(true);
    expect(session.canUndo).toBe(false);
  });

  it("records clicks and boxes as the annotation's prompts", async () => {
    const decoder = new FakeDecoder();
    const session = new PromptSession(decoder);
    void session.addPoint({ x: 1, y: 2, label: 1 }, TARGET);
    expect(session.promptRecord()).toEqual({ prompts: { points: [[1, 2]], labels: [1], box: null }, source: "click" });
    void session.setBox([0, 0, 2, 2], TARGET);
    expect(session.promptRecord().source).toBe("box");
    expect(await session.fullMask(FULL, () => new Uint8Array(0))).toBeNull();
  });
});

describe("predicted IoU score", () => {
  it("is SAM's IoU head clipped to [0, 1]", () => {
    expect([iouScore(1.02), iouScore(-0.1), iouScore(0.734)]).toEqual([1, 0, 0.734]);
  });
});
