/** The prompt session: the prompt being built (points, box), its decoded candidates, manual
 * edits, and their undo/redo history. Decoding goes through a `DecoderPort` (the worker's
 * client, or a fake one in tests); results that arrive after the prompt changed are dropped. */
import { isEmptyPrompt, normaliseBox, type Box, type Point, type Prompt, type Size } from "../../sam/prompts";
import type { DecodeCandidate, ResponseFor } from "../../sam/protocol";
import { History } from "./history";

export interface DecodeResult {
  id: number;
  candidates: DecodeCandidate[];
  lowRes: Float32Array;
  lowSide: number;
  outSize: Size;
}

/** One undoable step of the editing state; arrays are never mutated in place. */
export interface EditState {
  points: Point[];
  box: Box | null;
  decode: DecodeResult | null;
  selected: number; // position in decode.candidates
  edited: Uint8Array | null; // manual edits at the original size, override the candidate
  editing: number | null; // id of the annotation being edited, null for a new one
  baseVersion: number | null; // its version when editing started (sent as If-Match)
  maskInput: Float32Array | null; // logits of an existing annotation to refine
}

export const EMPTY: EditState = {
  points: [],
  box: null,
  decode: null,
  selected: 0,
  edited: null,
  editing: null,
  baseVersion: null,
  maskInput: null,
};

export interface SentDecode {
  id: number;
  reply: Promise<ResponseFor<"decode">>;
}

/** What the session needs of the decoder worker (`DecoderClient` has it). */
export interface DecoderPort {
  decode(embeddingKey: string, prompt: Prompt, maskInput: Float32Array | null, outSize: Size): SentDecode;
  preview(embeddingKey: string, prompt: Prompt, outSize: Size): SentDecode;
  adopt(id: number): void;
  cancelPreviews(): void;
  render(decodeId: number, index: number, outSize: Size): Promise<ResponseFor<"render">>;
}

/** Where decodes run: the embedding open in the worker and the size masks come back at. */
export interface DecodeTarget {
  embeddingKey: string;
  outSize: Size;
}

export type DecodeOutcome =
  | { kind: "decoded"; decodeMs: number; runMs: number }
  /** The prompt changed (or was cleared) while decoding: nothing to show. */
  | { kind: "stale" }
  | { kind: "failed"; error: string };

export interface CurrentMask {
  mask: Uint8Array;
  size: Size;
  iou: number | null;
}

/** SAM's predicted IoU as a score in [0, 1]: its IoU head is an unbounded regression (it
 * can say 1.02), so the score shown and saved is clipped; candidates are ranked raw. */
export function iouScore(iou: number): number {
  return Math.min(1, Math.max(0, iou));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class PromptSession {
  private readonly history = new History<EditState>(EMPTY);
  /** The decode shown before a state was pushed (SAM's iterative refinement uses its logits),
   * kept only when that state adds prompts to the same object. */
  private prior: { state: EditState; decode: DecodeResult | null; selected: number } | null = null;
  private generation = 0;
  private lastPreview: { point: Point; key: string; sent: SentDecode } | null = null;

  constructor(private readonly decoder: DecoderPort) {}

  get state(): EditState {
    return this.history.current;
  }

  get empty(): boolean {
    return this.state === EMPTY;
  }

  get canUndo(): boolean {
    return this.history.canUndo;
  }

  get canRedo(): boolean {
    return this.history.canRedo;
  }

  /** Forget everything (another image, a saved mask, another model). */
  reset(): void {
    this.generation++;
    this.prior = null;
    this.history.reset(EMPTY);
  }

  /** Drop the prompt as an undoable step; false when there was nothing to drop. */
  clear(): boolean {
    this.generation++;
    this.decoder.cancelPreviews();
    if (this.empty) return false;
    this.history.push(EMPTY);
    return true;
  }

  undo(): boolean {
    this.generation++;
    return this.history.undo() !== null;
  }

  redo(): boolean {
    this.generation++;
    return this.history.redo() !== null;
  }

  addPoint(point: Point, target: DecodeTarget): Promise<DecodeOutcome> {
    return this.pushPrompt({ points: [...this.state.points, point] }, target);
  }

  setBox(box: Box, target: DecodeTarget): Promise<DecodeOutcome> {
    return this.pushPrompt({ box: normaliseBox(box) }, target);
  }

  private pushPrompt(change: Partial<EditState>, target: DecodeTarget): Promise<DecodeOutcome> {
    const before = this.state;
    const next: EditState = { ...before, ...change, edited: null };
    this.prior = isEmptyPrompt(before) ? null : { state: next, decode: before.decode, selected: before.selected };
    this.history.push(next);
    return this.decode(next, target);
  }

  /** Logits to refine: an existing annotation's, else the previous decode's selected mask. */
  private maskInputFor(state: EditState): Float32Array | null {
    if (state.maskInput) return state.maskInput;
    const prior = this.prior?.state === state ? this.prior : null;
    if (!prior?.decode) return null;
    const { decode } = prior;
    const plane = decode.lowSide * decode.lowSide;
    const index = decode.candidates[prior.selected]?.index ?? 0;
    return decode.lowRes.slice(index * plane, (index + 1) * plane);
  }

  /** The hover preview that a first positive click on its point can adopt. */
  private matchingPreview(prompt: Prompt, maskInput: Float32Array | null, key: string): SentDecode | null {
    const preview = this.lastPreview;
    const p0 = prompt.points[0];
    if (!preview || maskInput || prompt.box || prompt.points.length !== 1 || p0?.label !== 1) return null;
    const near = Math.abs(preview.point.x - p0.x) < 0.5 && Math.abs(preview.point.y - p0.y) < 0.5;
    return preview.key === key && near ? preview.sent : null;
  }

  private async decode(state: EditState, target: DecodeTarget): Promise<DecodeOutcome> {
    const prompt: Prompt = { points: state.points, box: state.box };
    const generation = ++this.generation;
    const maskInput = this.maskInputFor(state);
    let reply: ResponseFor<"decode">;
    let sent: SentDecode;
    try {
      const preview = this.matchingPreview(prompt, maskInput, target.embeddingKey);
      if (preview) this.decoder.adopt(preview.id);
      const adopted = preview ? await preview.reply.catch(() => null) : null;
      sent = adopted?.ok && preview ? preview : this.decoder.decode(target.embeddingKey, prompt, maskInput, target.outSize);
      reply = await sent.reply;
    } catch (error) {
      return { kind: "failed", error: errorText(error) };
    }
    const current = this.state;
    if (generation !== this.generation || current.points !== state.points || current.box !== state.box) {
      return { kind: "stale" };
    }
    if (!reply.ok) return reply.cancelled ? { kind: "stale" } : { kind: "failed", error: reply.error };
    const decode: DecodeResult = {
      id: sent.id,
      candidates: reply.candidates,
      lowRes: reply.lowRes,
      lowSide: reply.lowSide,
      outSize: reply.outSize,
    };
    const selected = Math.max(0, reply.candidates.findIndex((c) => c.index === reply.preselected));
    this.history.replace({ ...current, decode, selected });
    return { kind: "decoded", decodeMs: reply.decodeMs, runMs: reply.runMs };
  }

  /** The hover preview of a positive click at `point`: the preselected mask, or null when the
   * prompt changed meanwhile or the preview was dropped. */
  async preview(point: Point, target: DecodeTarget): Promise<{ mask: Uint8Array; size: Size } | null> {
    const generation = this.generation;
    const sent = this.decoder.preview(target.embeddingKey, { points: [point], box: null }, target.outSize);
    this.lastPreview = { point, key: target.embeddingKey, sent };
    const reply = await sent.reply.catch(() => null);
    if (!reply?.ok || generation !== this.generation || !isEmptyPrompt(this.state)) return null;
    const chosen = reply.candidates.find((c) => c.index === reply.preselected);
    return chosen?.mask ? { mask: chosen.mask, size: reply.outSize } : null;
  }

  /** Show another candidate (rendered now if it was not: large images). */
  async selectCandidate(position: number): Promise<boolean> {
    const state = this.state;
    let decode = state.decode;
    const candidate = decode?.candidates[position];
    if (!decode || !candidate || state.edited) return false;
    if (!candidate.mask) {
      const reply = await this.decoder.render(decode.id, candidate.index, decode.outSize).catch(() => null);
      if (!reply?.ok || this.state !== state) return false;
      const mask = reply.mask;
      decode = { ...decode, candidates: decode.candidates.map((c, i) => (i === position ? { ...c, mask } : c)) };
    }
    this.history.push({ ...state, decode, selected: position });
    return true;
  }

  /** Edit an existing annotation: its mask by hand, or (with `maskInput`) refined by clicks. */
  edit(annotationId: number, version: number, mask: Uint8Array, maskInput: Float32Array | null = null): void {
    this.history.push({ ...EMPTY, editing: annotationId, baseVersion: version, edited: mask, maskInput });
  }

  /** A finished brush or eraser stroke. */
  paint(mask: Uint8Array): void {
    this.history.push({ ...this.state, edited: mask, points: [], box: null, decode: null, maskInput: null });
  }

  /** The mask being edited: manual edits, else the selected candidate. */
  current(imageSize: Size): CurrentMask | null {
    const s = this.state;
    if (s.edited) return { mask: s.edited, size: imageSize, iou: null };
    const candidate = s.decode?.candidates[s.selected];
    if (candidate?.mask && s.decode) return { mask: candidate.mask, size: s.decode.outSize, iou: candidate.iou };
    return null;
  }

  /** The current mask at the image's size (rendered again from the logits when the candidate
   * was rendered smaller), or null; `resize` is the fallback when rendering fails. */
  async fullMask(imageSize: Size, resize: (mask: Uint8Array, from: Size, to: Size) => Uint8Array): Promise<Uint8Array | null> {
    const s = this.state;
    if (s.edited) return s.edited;
    const candidate = s.decode?.candidates[s.selected];
    if (!candidate?.mask || !s.decode) return null;
    const out = s.decode.outSize;
    if (out.width === imageSize.width && out.height === imageSize.height) return candidate.mask;
    const reply = await this.decoder.render(s.decode.id, candidate.index, imageSize).catch(() => null);
    return reply?.ok ? reply.mask : resize(candidate.mask, out, imageSize);
  }

  /** The prompt as stored with an annotation, and the annotation's source. */
  promptRecord(): { prompts: { points: [number, number][]; labels: number[]; box: Box | null }; source: "manual" | "box" | "click" } {
    const s = this.state;
    const prompts = { points: s.points.map((p): [number, number] => [p.x, p.y]), labels: s.points.map((p) => p.label as number), box: s.box };
    const source = s.edited && s.points.length === 0 && !s.box ? "manual" : s.box ? "box" : "click";
    return { prompts, source };
  }
}
