/** The editing controller: turns pointer input and commands into prompt-session steps,
 * decodes, brush strokes, polygon edits and saves, and keeps the stage's mask layers in step.
 * The element owns it; what it needs of the element is `EditorHost`. */
import type { Annotation } from "../api/types";
import { samEngine } from "../sam/engine";
import { maskArea, maskToLowResLogits, polygonsToMask, resizeMask, type Ring } from "../sam/masks";
import type { Box, Size } from "../sam/prompts";
import { encodeRle } from "../sam/rle";
import type { EmbeddingMachine } from "./core/embedding";
import type { Conflict, SaveOutcome, Saver } from "./core/saver";
import { iouScore, type DecodeOutcome, type DecodeTarget, type PromptSession } from "./core/session";
import type { AnnotationStore, StoredAnnotation } from "./core/store";
import { inside, type Viewport } from "./core/viewport";
import type { Metrics } from "./hooks";
import type { Tool } from "./view/panels";
import type { PointerHost } from "./view/pointer";
import type { Scene, StageRenderer } from "./view/renderer";

const PREVIEW_MAX_SIDE = 1024;
const HOVER_INTERVAL_MS = 40;

export interface EditorHost {
  readonly size: Size;
  readonly tool: Tool;
  readonly brushRadius: number;
  readonly labelId: number | null;
  readonly polygonView: boolean;
  readonly tolerance: number;
  readonly spaceDown: boolean;
  readonly viewport: Viewport;
  readonly embedding: EmbeddingMachine;
  readonly metrics: Metrics;
  notice: string;
  error: string;
  colorOf(label: number | null): string;
  redraw(): void;
  /** A new annotation was saved on this image. */
  saved(annotation: Annotation): void;
}

export class Editor implements PointerHost {
  saving = false;
  conflict: Conflict | null = null;
  showPreview = false;
  /** A save failed for lack of network: save again when the browser is back online. */
  saveWhenOnline = false;
  /** Pointer time of the prompt whose mask is painted next (click-to-mask latency). */
  pendingLatency: number | null = null;
  private hoverTimer: ReturnType<typeof setTimeout> | undefined;
  private lastHover = 0;
  private annotationsStale = false;

  constructor(
    private readonly host: EditorHost,
    readonly session: PromptSession,
    readonly store: AnnotationStore,
    private readonly saver: Saver,
    readonly renderer: StageRenderer,
  ) {}

  get viewport(): Viewport { return this.host.viewport; }
  get size(): Size { return this.host.size; }
  get tool(): Tool { return this.host.tool; }
  get brushRadius(): number { return this.host.brushRadius; }
  get spaceDown(): boolean { return this.host.spaceDown; }

  close(): void {
    clearTimeout(this.hoverTimer);
  }

  redraw(): void {
    this.host.redraw();
  }

  /** Repaint the saved annotations' layer with the next frame: a burst of changes (a
   * teammate's bulk review) costs one paint a frame, not one each. */
  repaintAnnotations(): void {
    this.annotationsStale = true;
    this.host.redraw();
  }

  /** Draw a frame of the stage, the annotations' layer repainted first if it changed. */
  draw(canvas: HTMLCanvasElement, scene: Scene): void {
    if (this.annotationsStale) {
      this.annotationsStale = false;
      const host = this.host;
      const started = performance.now();
      this.renderer.paintAnnotations(this.store.values(), host.size, (l) => host.colorOf(l), this.session.state.editing);
      host.metrics.layerPaints.push(performance.now() - started);
    }
    this.renderer.draw(canvas, scene);
  }

  refreshCurrent(): void {
    const current = this.session.current(this.host.size);
    if (current) this.renderer.paintMask(this.renderer.current, current.mask, current.size, this.host.colorOf(this.host.labelId));
    this.host.redraw();
  }

  /** After the session changed: the edited annotation hides from the layer, its mask shows. */
  private changed(notice?: string): void {
    if (notice !== undefined) this.host.notice = notice;
    this.showPreview = false;
    this.repaintAnnotations();
    this.refreshCurrent();
  }

  reset(): void {
    this.session.reset();
    this.changed();
  }

  // ------------------------------------------------------------------ prompts

  private target(): DecodeTarget {
    const { width, height } = this.host.size;
    const longest = Math.max(width, height);
    const f = longest <= PREVIEW_MAX_SIDE * 2 ? 1 : PREVIEW_MAX_SIDE / longest;
    const outSize = { width: Math.max(1, Math.round(width * f)), height: Math.max(1, Math.round(height * f)) };
    return { embeddingKey: this.host.embedding.key, outSize };
  }

  private decoded(outcome: DecodeOutcome, startedAt: number): void {
    if (outcome.kind === "decoded") {
      this.host.metrics.decodeTimes.push(outcome.decodeMs);
      this.host.metrics.runTimes.push(outcome.runMs);
      this.pendingLatency = startedAt;
    } else if (outcome.kind === "failed") {
      this.host.error = `Decoding failed: ${outcome.error}`;
    }
    this.refreshCurrent();
  }

  private canPrompt(): boolean {
    const embedding = this.host.embedding;
    if (embedding.ready) return true;
    this.host.notice = embedding.state === "pending" ? "The embedding is still being computed…" : "The model is not ready yet.";
    this.host.redraw();
    return false;
  }

  addPoint(x: number, y: number, label: 0 | 1, startedAt: number): void {
    if (!this.canPrompt()) return;
    this.showPreview = false;
    void this.session.addPoint({ x, y, label }, this.target()).then((o) => { this.decoded(o, startedAt); });
    this.host.redraw();
  }

  setBox(box: Box, startedAt: number): void {
    if (!this.canPrompt()) return;
    void this.session.setBox(box, this.target()).then((o) => { this.decoded(o, startedAt); });
    this.host.redraw();
  }

  hover(x: number, y: number): void {
    const s = this.session.state;
    if (!this.host.embedding.ready || s.points.length > 0 || s.box || s.edited) return;
    clearTimeout(this.hoverTimer);
    this.hoverTimer = setTimeout(() => {
      this.lastHover = performance.now();
      if (!inside(this.host.size, x, y)) return;
      void this.session.preview({ x, y, label: 1 }, this.target()).then((preview) => {
        if (!preview) return;
        this.renderer.paintMask(this.renderer.preview, preview.mask, preview.size, this.host.colorOf(this.host.labelId));
        this.showPreview = true;
        this.host.redraw();
      });
    }, Math.max(0, HOVER_INTERVAL_MS - (performance.now() - this.lastHover)));
  }

  leave(): void {
    this.showPreview = false;
    clearTimeout(this.hoverTimer);
    this.host.redraw();
  }

  async selectCandidate(position: number): Promise<void> {
    if (await this.session.selectCandidate(position)) this.refreshCurrent();
  }

  clear(): void {
    if (this.session.clear()) this.changed("");
  }

  undo(): void {
    if (this.session.undo()) this.changed();
  }

  redo(): void {
    if (this.session.redo()) this.changed();
  }

  // ------------------------------------------------------------------ manual edits

  private selected(): StoredAnnotation | undefined {
    return this.store.selected !== null ? this.store.get(this.store.selected) : undefined;
  }

  editableRings(): Ring[] | null {
    const a = this.host.polygonView ? this.selected() : undefined;
    return a ? this.store.polygons(a, this.host.size, this.host.tolerance) : null;
  }

  async paintBase(): Promise<Uint8Array | null> {
    const base = await this.session.fullMask(this.host.size, resizeMask);
    const a = this.selected();
    if (base || !a || this.session.state.editing !== null) return base;
    this.session.edit(a.data.id, a.data.version, a.mask.slice());
    this.changed();
    return a.mask;
  }

  stroke(from: [number, number], to: [number, number], erase: boolean): void {
    this.renderer.stroke(from, to, this.host.brushRadius, erase, this.host.colorOf(this.host.labelId));
  }

  strokeDone(mask: Uint8Array): void {
    this.session.paint(mask);
    this.refreshCurrent();
  }

  verticesMoved(rings: Ring[]): void {
    const a = this.selected();
    if (!a) return;
    this.session.edit(a.data.id, a.data.version, polygonsToMask(rings, this.host.size));
    this.changed("Polygon edited: press Enter to save.");
  }

  selectAt(x: number, y: number): void {
    this.store.selected = this.store.at(x, y, this.host.size);
    this.host.redraw();
  }

  /** Edit an annotation by hand, or (`refine`) with clicks starting from its mask. */
  async startEditing(id: number, refine: boolean): Promise<void> {
    const a = this.store.get(id);
    if (!a) return;
    this.store.selected = id;
    const model = this.host.embedding.model;
    let maskInput: Float32Array | null = null;
    if (refine && model && this.host.embedding.ready) {
      const key = this.host.embedding.key;
      const input = await samEngine().client.setEmbedding({ key, url: key }).catch(() => null);
      if (input?.ok) {
        const side = 4 * (model.info.embeddingShape[2] ?? 16);
        maskInput = maskToLowResLogits(a.mask, this.host.size, input.inputSize, model.info.imgSize, side);
      }
    }
    this.session.edit(id, a.data.version, a.mask.slice(), maskInput);
    this.changed(refine
      ? "Refining: add clicks or a box; the saved mask is used as the starting point."
      : "Editing: paint with B, erase with E, then press Enter to save.");
  }

  // ------------------------------------------------------------------ saving

  /** What a save, a merge or a relabel led to, shown to the user. */
  private outcome(result: SaveOutcome, done: string): boolean {
    if (result.kind === "saved") {
      this.host.notice = done;
    } else if (result.kind === "conflict") {
      this.conflict = result.conflict;
    } else if (result.kind === "offline") {
      // The mask stays in the prompt history, so nothing is lost while offline.
      this.saveWhenOnline = true;
      this.host.notice = "Offline: the mask is kept and saves when the network is back.";
    } else {
      this.host.error = `Saving failed: ${result.error}`;
    }
    this.repaintAnnotations();
    return result.kind === "saved";
  }

  async accept(labelId: number | null): Promise<void> {
    if (this.saving) return;
    const mask = await this.session.fullMask(this.host.size, resizeMask);
    if (!mask || maskArea(mask) === 0) {
      this.host.notice = "Nothing to save: click on an object first.";
      this.host.redraw();
      return;
    }
    const s = this.session.state;
    const { prompts, source } = this.session.promptRecord();
    const candidate = s.edited ? null : s.decode?.candidates[s.selected];
    const { width, height } = this.host.size;
    const body = {
      // SAM's IoU head can overshoot 1; the server takes an IoU in [0, 1].
      label: labelId, rle: encodeRle(mask, height, width), predicted_iou: candidate ? iouScore(candidate.iou) : null,
      source, prompts, model_key: this.host.embedding.model?.info.modelKey ?? "",
    };
    this.saving = true;
    this.host.redraw();
    const result = await this.saver.save(body, mask, s.editing, s.baseVersion);
    this.saving = false;
    if (result.kind === "saved") {
      this.store.selected = result.annotation.id;
      this.session.reset();
      this.refreshCurrent();
      this.host.saved(result.annotation);
    }
    this.outcome(result, "Saved.");
  }

  async resolveConflict(choice: "mine" | "theirs" | "merge"): Promise<void> {
    const conflict = this.conflict;
    if (!conflict) return;
    this.conflict = null;
    // The websocket can echo the saved version before the PATCH resolves; the prompt history
    // must already be closed then, or the echo reads as a teammate's edit.
    this.session.reset();
    this.changed(choice === "theirs" ? "Kept your teammate's version." : undefined);
    if (choice === "theirs") return;
    const result = await this.saver.resolve(conflict, choice, this.host.size);
    // A failure keeps the dialog (and the user's mask in it) so the choice can be retried.
    if (result.kind === "failed" || result.kind === "offline") this.conflict = conflict;
    this.outcome(result, choice === "merge" ? "Merged both versions." : "Saved your version.");
  }

  async remove(id: number): Promise<void> {
    const result = await this.saver.remove(id);
    if (result.kind === "deleted" && this.session.state.editing === id) this.session.reset();
    if (result.kind === "changed") this.host.notice = "A teammate changed this annotation just now; look again before deleting.";
    if (result.kind === "failed") this.host.error = `Deleting failed: ${result.error}`;
    this.changed();
  }

  async relabel(id: number, label: number | null): Promise<void> {
    this.outcome(await this.saver.relabel(id, label), "Label changed.");
  }
}
