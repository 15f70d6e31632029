/**
 * The annotation workspace: image canvas with zoom/pan, SAM prompts (clicks, box, both,
 * refinement, hover preview), candidate masks, brush/eraser, polygon view with vertex
 * editing, undo/redo, live collaboration and stale-save resolution.
 */
import { LitElement, html, nothing, type TemplateResult } from "lit";
import { ApiError, api } from "../api/client";
import type { Annotation, AnnotationInput, EmbeddingInfo, ImageItem, Label, Project } from "../api/types";
import { config } from "../config";
import { ProjectSocket, type ConnectionState, type PresenceUser, type ServerEvent } from "../realtime/socket";
import { samEngine, type LoadedModel } from "../sam/engine";
import {
  maskArea,
  maskIoU,
  maskToLowResLogits,
  maskToPolygons,
  paintStroke,
  polygonsToMask,
  resizeMask,
  type Ring,
} from "../sam/masks";
import { isEmptyPrompt, normaliseBox, type Box, type Point, type Prompt, type Size } from "../sam/prompts";
import type { DecodeCandidate, ResponseFor } from "../sam/protocol";
import { decodeRle, encodeRle, type CompressedRle } from "../sam/rle";
import { hexToRgb, paintMask, paintMaskInBox, UNLABELLED_COLOR } from "./colors";
import { History } from "./history";
import { navigate } from "./router";

type Tool = "sam" | "brush" | "eraser";

interface DecodeResult {
  id: number;
  candidates: DecodeCandidate[];
  lowRes: Float32Array;
  lowSide: number;
  outSize: Size;
}

/** One undoable step of the editing state; arrays are never mutated in place. */
interface EditState {
  points: Point[];
  box: Box | null;
  decode: DecodeResult | null;
  selected: number; // position in decode.candidates
  edited: Uint8Array | null; // manual edits at the original size, override the candidate
  editing: number | null; // id of the annotation being edited, null for a new one
  baseVersion: number | null; // its version when editing started (sent as If-Match)
  maskInput: Float32Array | null; // logits of an existing annotation to refine
}

const EMPTY: EditState = {
  points: [],
  box: null,
  decode: null,
  selected: 0,
  edited: null,
  editing: null,
  baseVersion: null,
  maskInput: null,
};

interface Conflict {
  mine: Partial<AnnotationInput>;
  mineMask: Uint8Array | null;
  current: Annotation;
}

type EmbeddingState = "idle" | "loading" | "pending" | "failed" | "ready";

interface StoredAnnotation {
  data: Annotation;
  mask: Uint8Array;
  polygons: Map<number, Ring[]>;
}

const PREVIEW_MAX_SIDE = 1024;
const HOVER_INTERVAL_MS = 40;

export interface SamStudioHooks {
  latencies: number[];
  /** Time spent in the worker per decode (session.run + mask rendering), ms. */
  decodeTimes: number[];
  /** Of which session.run, ms. */
  runTimes: number[];
  state: () => Record<string, unknown>;
  currentMask: () => { size: [number, number]; area: number } | null;
  iouWithRle: (rle: CompressedRle) => number;
  annotations: () => Annotation[];
  imageToClient: (x: number, y: number) => [number, number];
}

declare global {
  interface Window {
    samStudio?: SamStudioHooks;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class AnnotationWorkspace extends LitElement {
  projectId = 0;
  imageId = 0;

  static override properties = { projectId: { type: Number }, imageId: { type: Number } };

  private project: Project | null = null;
  private image: ImageItem | null = null;
  private neighbours: ImageItem[] = [];
  private img: HTMLImageElement | null = null;
  private size: Size = { width: 0, height: 0 };
  private model: LoadedModel | null = null;
  private modelError = "";
  private embeddingState: EmbeddingState = "idle";
  private embeddingError = "";
  private embeddingKey = "";
  private annotations = new Map<number, StoredAnnotation>();
  private selectedAnnotation: number | null = null;
  private labelId: number | null = null;
  private tool: Tool = "sam";
  private brushRadius = 8;
  private opacity = 0.5;
  private polygonView = false;
  private tolerance = 1;
  private showHelp = false;
  private notice = "";
  private error = "";
  private saving = false;
  /** A save failed for lack of network: save again when the browser is back online. */
  private saveWhenOnline = false;
  private conflict: Conflict | null = null;
  private connection: ConnectionState = "connecting";
  private presence: PresenceUser[] = [];
  private readonly history = new History<EditState>(EMPTY);
  private socket: ProjectSocket | null = null;
  private pollTimer: number | undefined;

  // View transform: screen = image * scale + (tx, ty).
  private scale = 1;
  private tx = 0;
  private ty = 0;
  private canvas: HTMLCanvasElement | null = null;
  private annLayer: HTMLCanvasElement = document.createElement("canvas");
  private currentLayer: HTMLCanvasElement = document.createElement("canvas");
  private previewLayer: HTMLCanvasElement = document.createElement("canvas");
  private previewVisible = false;
  private drawQueued = false;
  private resizeObserver: ResizeObserver | null = null;

  // Pointer interaction.
  private drag:
    | { kind: "pan"; sx: number; sy: number; tx: number; ty: number }
    | { kind: "box"; x0: number; y0: number; x1: number; y1: number; moved: boolean; button: number; t: number }
    | { kind: "paint"; last: [number, number]; mask: Uint8Array; value: 0 | 1 }
    | { kind: "vertex"; ring: number; vertex: number; rings: Ring[] }
    | null = null;
  private spaceDown = false;
  private lastHover = 0;
  private hoverTimer: number | undefined;
  private hoverPoint: [number, number] | null = null;
  private decodeGeneration = 0;
  private pendingLatency: number | null = null;
  private readonly latencies: number[] = [];
  private readonly decodeTimes: number[] = [];
  private readonly runTimes: number[] = [];

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  private get state(): EditState {
    return this.history.current;
  }

  private get labels(): Label[] {
    return this.project?.labels ?? [];
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("keydown", this.onKeyDown);
    window.addEventListener("keyup", this.onKeyUp);
    window.addEventListener("online", this.onOnline);
    this.installHooks();
    void this.load();
  }

  override disconnectedCallback(): void {
    window.removeEventListener("keydown", this.onKeyDown);
    window.removeEventListener("keyup", this.onKeyUp);
    window.removeEventListener("online", this.onOnline);
    this.socket?.close();
    this.resizeObserver?.disconnect();
    window.clearTimeout(this.pollTimer);
    window.clearTimeout(this.hoverTimer);
    super.disconnectedCallback();
  }

  protected override updated(changed: Map<string, unknown>): void {
    if (changed.has("imageId") && changed.get("imageId") !== undefined) void this.load();
    const canvas = this.querySelector<HTMLCanvasElement>("canvas.stage-canvas");
    if (canvas && canvas !== this.canvas) {
      this.canvas = canvas;
      this.resizeObserver?.disconnect();
      this.resizeObserver = new ResizeObserver(() => this.fitCanvas());
      const stage = canvas.parentElement;
      if (stage) this.resizeObserver.observe(stage);
      this.fitCanvas();
    }
  }

  private installHooks(): void {
    window.samStudio = {
      latencies: this.latencies,
      decodeTimes: this.decodeTimes,
      runTimes: this.runTimes,
      state: () => ({
        model: this.model?.info.variant ?? null,
        backend: this.model?.backend ?? null,
        threads: this.model?.threads ?? null,
        embedding: this.embeddingState,
        connection: this.connection,
        tool: this.tool,
        editing: this.state.editing,
        edited: this.state.edited !== null,
        points: this.state.points.length,
        candidates: this.state.decode?.candidates.map((c) => c.iou) ?? [],
        selected: this.state.selected,
        annotations: this.annotations.size,
        crossOriginIsolated: globalThis.crossOriginIsolated,
      }),
      currentMask: () => {
        const mask = this.currentMask();
        if (!mask) return null;
        return { size: [mask.size.height, mask.size.width], area: maskArea(mask.mask) };
      },
      iouWithRle: (rle: CompressedRle) => {
        const mask = this.currentMask();
        if (!mask) return 0;
        const truth = decodeRle(rle);
        const resized = resizeMask(mask.mask, mask.size, { height: rle.size[0], width: rle.size[1] });
        return maskIoU(resized, truth);
      },
      annotations: () => [...this.annotations.values()].map((a) => a.data),
      imageToClient: (x: number, y: number) => {
        const rect = this.canvas?.getBoundingClientRect();
        return [(rect?.left ?? 0) + x * this.scale + this.tx, (rect?.top ?? 0) + y * this.scale + this.ty];
      },
    };
  }

  // ------------------------------------------------------------------ loading

  private async load(): Promise<void> {
    this.error = "";
    this.history.reset(EMPTY);
    this.annotations.clear();
    this.selectedAnnotation = null;
    this.embeddingState = "loading";
    this.requestUpdate();
    try {
      const [project, image] = await Promise.all([
        this.project?.id === this.projectId ? Promise.resolve(this.project) : api.project(this.projectId),
        api.image(this.projectId, this.imageId),
      ]);
      this.project = project;
      this.image = image;
      this.size = { width: image.width, height: image.height };
      if (this.labelId === null || !project.labels.some((l) => l.id === this.labelId)) {
        this.labelId = project.labels[0]?.id ?? null;
      }
      if (!this.socket) {
        this.socket = new ProjectSocket(
          this.projectId,
          (event) => this.onEvent(event),
          (state) => {
            this.connection = state;
            this.requestUpdate();
          },
        );
      }
      this.socket.setImage(this.imageId);
      this.requestUpdate();
      await Promise.all([this.loadImage(), this.loadAnnotations(), this.loadModelAndEmbedding()]);
      void this.loadNeighbours();
    } catch (error) {
      this.error = message(error);
      this.requestUpdate();
    }
  }

  private loadImage(): Promise<void> {
    return new Promise((resolve) => {
      const img = new Image();
      img.decoding = "async";
      img.onload = () => {
        this.img = img;
        this.size = { width: img.naturalWidth, height: img.naturalHeight };
        for (const layer of [this.annLayer]) {
          layer.width = this.size.width;
          layer.height = this.size.height;
        }
        this.fitView();
        this.rebuildAnnotationLayer();
        resolve();
      };
      img.onerror = () => {
        this.error = "The image could not be loaded.";
        this.requestUpdate();
        resolve();
      };
      img.src = api.imageFileUrl(this.projectId, this.imageId);
    });
  }

  private async loadAnnotations(): Promise<void> {
    const list = await api.annotations(this.projectId, this.imageId);
    for (const a of list) this.storeAnnotation(a);
    this.rebuildAnnotationLayer();
  }

  private storeAnnotation(a: Annotation): void {
    try {
      this.annotations.set(a.id, { data: a, mask: decodeRle(a.rle), polygons: new Map() });
    } catch {
      // A malformed RLE from an import: keep the row visible in the list without a mask.
      this.annotations.set(a.id, { data: a, mask: new Uint8Array(a.rle.size[0] * a.rle.size[1]), polygons: new Map() });
    }
  }

  private async loadModelAndEmbedding(): Promise<void> {
    const image = this.image;
    const project = this.project;
    if (!image || !project) return;
    const modelKey = project.default_model_key;
    try {
      this.model = await samEngine().ensureModel(modelKey);
      this.modelError = "";
    } catch (error) {
      this.modelError = message(error);
      this.embeddingState = "idle";
      this.requestUpdate();
      return;
    }
    this.requestUpdate();
    await this.loadEmbedding();
  }

  private embeddingRef(image: ImageItem, info: EmbeddingInfo | null = null): { key: string; url: string } {
    const modelKey = this.model?.info.modelKey ?? this.project?.default_model_key ?? "sam_tiny";
    const url = info?.url ?? image.embedding?.url ?? api.embeddingUrl(modelKey, image.sha256);
    return { key: url, url };
  }

  /**
   * Ask the server for the embedding's state first (POST: it also moves this image to the
   * front of the queue and pre-encodes the next ones), and only download it once ready, so
   * that a pending embedding never shows up as a failed request. While pending, the page
   * waits for `embedding.ready` on the websocket and polls as a fallback.
   */
  private async loadEmbedding(requested = false): Promise<void> {
    const image = this.image;
    if (!image || !this.model) return;
    window.clearTimeout(this.pollTimer);
    const imageId = image.id;
    if (this.embeddingState !== "pending") this.embeddingState = "loading";
    this.requestUpdate();
    let info: EmbeddingInfo;
    try {
      info = requested
        ? ((await api.image(this.projectId, imageId)).embedding ?? (await api.requestEmbedding(this.projectId, imageId)))
        : await api.requestEmbedding(this.projectId, imageId);
    } catch (error) {
      if (this.image?.id !== imageId) return;
      this.embeddingState = "pending";
      this.embeddingError = message(error);
      this.pollTimer = window.setTimeout(() => void this.loadEmbedding(true), 4000);
      this.requestUpdate();
      return;
    }
    if (this.image?.id !== imageId) return;
    const status = info.status.toLowerCase();
    if (status === "ready") {
      const ref = this.embeddingRef(image, info);
      const result = await samEngine().client.setEmbedding(ref);
      if (this.image?.id !== imageId) return;
      if (!result.error) {
        this.embeddingKey = ref.key;
        this.embeddingState = "ready";
        this.embeddingError = "";
      } else {
        this.embeddingState = "failed";
        this.embeddingError = result.error;
      }
    } else if (status === "failed" || status === "error") {
      this.embeddingState = "failed";
      this.embeddingError = info.error || "The image embedding could not be computed.";
    } else {
      this.embeddingState = "pending";
      this.pollTimer = window.setTimeout(() => void this.loadEmbedding(true), 2500);
    }
    this.requestUpdate();
  }

  private async retryEmbedding(): Promise<void> {
    this.embeddingState = "pending";
    this.requestUpdate();
    await this.loadEmbedding(false);
  }

  private async loadNeighbours(): Promise<void> {
    try {
      const page = await api.images(this.projectId, { page_size: 500 });
      this.neighbours = page.results;
      const index = this.neighbours.findIndex((i) => i.id === this.imageId);
      // Prefetch the next images' embeddings that are ready (the server pre-encodes them).
      const next = this.neighbours.slice(index + 1, index + 3).filter((i) => i.embedding?.status === "ready");
      if (this.model && next.length > 0) void samEngine().client.prefetch(next.map((i) => this.embeddingRef(i)));
      this.requestUpdate();
    } catch {
      this.neighbours = [];
    }
  }

  private go(delta: number): void {
    const index = this.neighbours.findIndex((i) => i.id === this.imageId);
    const target = this.neighbours[index + delta];
    if (target) navigate(`/projects/${this.projectId}/images/${target.id}`);
  }

  // ------------------------------------------------------------------ realtime

  private onEvent(event: ServerEvent): void {
    switch (event.event) {
      case "embedding.ready":
        if (this.image && event.payload.sha256 === this.image.sha256 && this.embeddingState !== "ready") {
          void this.loadEmbedding(true);
        }
        break;
      case "embedding.failed":
        if (this.image && event.payload.sha256 === this.image.sha256) {
          window.clearTimeout(this.pollTimer);
          this.embeddingState = "failed";
          this.embeddingError = event.payload.error ?? "The image embedding could not be computed.";
          this.requestUpdate();
        }
        break;
      case "annotation.created":
      case "annotation.updated": {
        const a = event.payload;
        if (a.image !== this.imageId) break;
        const known = this.annotations.get(a.id);
        if (known && known.data.version >= a.version) break;
        this.storeAnnotation(a);
        if (this.state.editing === a.id && this.state.baseVersion !== null && a.version > this.state.baseVersion) {
          this.notice = "A teammate changed the annotation you are editing; saving will ask what to keep.";
        }
        this.rebuildAnnotationLayer();
        break;
      }
      case "annotation.deleted":
        if (event.payload.image === this.imageId && this.annotations.delete(event.payload.id)) {
          if (this.selectedAnnotation === event.payload.id) this.selectedAnnotation = null;
          this.rebuildAnnotationLayer();
        }
        break;
      case "model.activated":
        if (this.project && event.payload.model_key !== this.model?.info.modelKey) {
          this.project = { ...this.project, default_model_key: event.payload.model_key };
          this.notice = `A new model (${event.payload.model_key}) was activated for this project: loading its decoder…`;
          this.history.reset(EMPTY);
          this.model = null;
          this.embeddingState = "loading";
          this.refreshCurrentLayer();
          void this.loadModelAndEmbedding().then(() => {
            this.notice = "";
            this.requestUpdate();
          });
        }
        break;
      case "presence":
        this.presence = event.payload.users.filter((u) => u.image === this.imageId && u.id !== config.user.id);
        this.requestUpdate();
        break;
      case "job.progress":
        if (event.payload.kind === "segment" && (event.payload.image === undefined || event.payload.image === this.imageId)) {
          const done = event.payload.state === "done" || event.payload.state === "succeeded";
          this.notice = done
            ? "Segment everything finished: proposals are ready to review."
            : `Segmenting everything… ${Math.round(event.payload.progress * 100)}%`;
          this.requestUpdate();
        }
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ view

  private fitCanvas(): void {
    const canvas = this.canvas;
    const stage = canvas?.parentElement;
    if (!canvas || !stage) return;
    const dpr = window.devicePixelRatio || 1;
    const rect = stage.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width * dpr));
    canvas.height = Math.max(1, Math.round(rect.height * dpr));
    canvas.style.width = `${rect.width}px`;
    canvas.style.height = `${rect.height}px`;
    if (this.scale === 1 && this.tx === 0 && this.ty === 0) this.fitView();
    this.queueDraw();
  }

  private fitView(): void {
    const canvas = this.canvas;
    if (!canvas || this.size.width === 0) return;
    const w = canvas.clientWidth || canvas.width;
    const h = canvas.clientHeight || canvas.height;
    this.scale = Math.min(w / this.size.width, h / this.size.height) * 0.95;
    this.tx = (w - this.size.width * this.scale) / 2;
    this.ty = (h - this.size.height * this.scale) / 2;
    this.queueDraw();
  }

  private toImage(clientX: number, clientY: number): [number, number] {
    const rect = this.canvas?.getBoundingClientRect();
    const sx = clientX - (rect?.left ?? 0);
    const sy = clientY - (rect?.top ?? 0);
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  private inside(x: number, y: number): boolean {
    return x >= 0 && y >= 0 && x < this.size.width && y < this.size.height;
  }

  private queueDraw(): void {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.draw();
      if (this.pendingLatency !== null && this.state.decode) {
        this.latencies.push(performance.now() - this.pendingLatency);
        this.pendingLatency = null;
      }
    });
  }

  private labelColor(labelId: number | null): string {
    return this.labels.find((l) => l.id === labelId)?.color ?? UNLABELLED_COLOR;
  }

  private rebuildAnnotationLayer(): void {
    const { width, height } = this.size;
    if (width === 0) return;
    if (this.annLayer.width !== width || this.annLayer.height !== height) {
      this.annLayer.width = width;
      this.annLayer.height = height;
    }
    const ctx = this.annLayer.getContext("2d");
    if (!ctx) return;
    const data = ctx.createImageData(width, height);
    for (const a of this.annotations.values()) {
      if (a.data.id === this.state.editing) continue;
      if (a.mask.length !== width * height) continue;
      const alpha = a.data.review_state === "proposed" ? 150 : a.data.review_state === "rejected" ? 60 : 255;
      const box = a.data.bbox.length === 4 && a.data.bbox[2] ? a.data.bbox : [0, 0, width, height];
      paintMaskInBox(data.data, a.mask, width, box, hexToRgb(this.labelColor(a.data.label)), alpha);
    }
    ctx.putImageData(data, 0, 0);
    this.requestUpdate();
    this.queueDraw();
  }

  private paintLayer(layer: HTMLCanvasElement, mask: Uint8Array, size: Size, color: string): void {
    if (layer.width !== size.width || layer.height !== size.height) {
      layer.width = size.width;
      layer.height = size.height;
    }
    const ctx = layer.getContext("2d");
    if (!ctx) return;
    const data = ctx.createImageData(size.width, size.height);
    paintMask(data.data, mask, hexToRgb(color));
    ctx.putImageData(data, 0, 0);
  }

  /** The mask being edited: manual edits, else the selected candidate. */
  private currentMask(): { mask: Uint8Array; size: Size; iou: number | null } | null {
    const s = this.state;
    if (s.edited) return { mask: s.edited, size: this.size, iou: null };
    const candidate = s.decode?.candidates[s.selected];
    if (candidate?.mask && s.decode) return { mask: candidate.mask, size: s.decode.outSize, iou: candidate.iou };
    return null;
  }

  private refreshCurrentLayer(): void {
    const current = this.currentMask();
    if (current) this.paintLayer(this.currentLayer, current.mask, current.size, this.labelColor(this.labelId));
    this.requestUpdate();
    this.queueDraw();
  }

  private polygonsOf(a: StoredAnnotation): Ring[] {
    const key = Math.round(this.tolerance * 100);
    let rings = a.polygons.get(key);
    if (!rings) {
      rings = maskToPolygons(a.mask, this.size, this.tolerance);
      a.polygons.set(key, rings);
    }
    return rings;
  }

  private draw(): void {
    const canvas = this.canvas;
    const ctx = canvas?.getContext("2d");
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.tx, dpr * this.ty);
    ctx.imageSmoothingEnabled = this.scale < 2;
    if (this.img) ctx.drawImage(this.img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = this.opacity;
    ctx.drawImage(this.annLayer, 0, 0, this.size.width, this.size.height);
    if (this.currentMask()) {
      ctx.globalAlpha = Math.min(1, this.opacity + 0.15);
      ctx.drawImage(this.currentLayer, 0, 0, this.size.width, this.size.height);
    } else if (this.previewVisible) {
      ctx.globalAlpha = this.opacity * 0.7;
      ctx.drawImage(this.previewLayer, 0, 0, this.size.width, this.size.height);
    }
    ctx.globalAlpha = 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const sx = (x: number): number => x * this.scale + this.tx;
    const sy = (y: number): number => y * this.scale + this.ty;
    // Polygons (and the vertices of the selected annotation).
    if (this.polygonView) {
      for (const a of this.annotations.values()) {
        if (a.data.id === this.state.editing && this.state.edited) continue;
        const selected = a.data.id === this.selectedAnnotation;
        const rings = this.drag?.kind === "vertex" && selected ? this.drag.rings : this.polygonsOf(a);
        ctx.strokeStyle = this.labelColor(a.data.label);
        ctx.lineWidth = selected ? 2.5 : 1.5;
        for (const ring of rings) {
          ctx.beginPath();
          for (let i = 0; i < ring.length; i += 2) {
            const x = sx(ring[i] as number);
            const y = sy(ring[i + 1] as number);
            if (i === 0) ctx.moveTo(x, y);
            else ctx.lineTo(x, y);
          }
          ctx.closePath();
          ctx.stroke();
          if (selected) {
            ctx.fillStyle = "#fff";
            for (let i = 0; i < ring.length; i += 2) {
              ctx.fillRect(sx(ring[i] as number) - 3, sy(ring[i + 1] as number) - 3, 6, 6);
            }
          }
        }
      }
    } else if (this.selectedAnnotation !== null) {
      const a = this.annotations.get(this.selectedAnnotation);
      if (a && a.data.id !== this.state.editing) {
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = 2;
        for (const ring of this.polygonsOf(a)) {
          ctx.beginPath();
          for (let i = 0; i < ring.length; i += 2) {
            const x = sx(ring[i] as number);
            const y = sy(ring[i + 1] as number);
            if (i === 0) ctx.moveTo(x, y);
            else ctx.lineTo(x, y);
          }
          ctx.closePath();
          ctx.stroke();
        }
      }
    }
    // Box being dragged or set.
    const box =
      this.drag?.kind === "box" && this.drag.moved
        ? ([this.drag.x0, this.drag.y0, this.drag.x1, this.drag.y1] as Box)
        : this.state.box;
    if (box) {
      const [x0, y0, x1, y1] = normaliseBox(box);
      ctx.strokeStyle = "#4f7cff";
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(sx(x0), sy(y0), (x1 - x0) * this.scale, (y1 - y0) * this.scale);
      ctx.setLineDash([]);
    }
    for (const p of this.state.points) {
      ctx.beginPath();
      ctx.arc(sx(p.x), sy(p.y), 6, 0, Math.PI * 2);
      ctx.fillStyle = p.label === 1 ? "#2ecc71" : "#e74c3c";
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
    if ((this.tool === "brush" || this.tool === "eraser") && this.hoverPoint) {
      ctx.beginPath();
      ctx.arc(sx(this.hoverPoint[0]), sy(this.hoverPoint[1]), this.brushRadius * this.scale, 0, Math.PI * 2);
      ctx.strokeStyle = this.tool === "brush" ? "#fff" : "#e74c3c";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  // ------------------------------------------------------------------ prompts and decoding

  private displaySize(): Size {
    const { width, height } = this.size;
    const longest = Math.max(width, height);
    if (longest <= PREVIEW_MAX_SIDE * 2) return { width, height };
    const f = PREVIEW_MAX_SIDE / longest;
    return { width: Math.max(1, Math.round(width * f)), height: Math.max(1, Math.round(height * f)) };
  }

  private canDecode(): boolean {
    return this.embeddingState === "ready" && this.model !== null;
  }

  /** Push a new prompt state and decode it. */
  private pushPrompt(next: Partial<EditState>, startedAt: number | null): void {
    const base = this.state;
    const state: EditState = { ...base, ...next, edited: null };
    this.priorDecodeCache = isEmptyPrompt(base) ? null : { state, decode: base.decode, selected: base.selected };
    this.history.push(state);
    this.previewVisible = false;
    void this.runDecode(state, startedAt);
    this.queueDraw();
    this.requestUpdate();
  }

  private lastPreview: { x: number; y: number; key: string; sent: { id: number; reply: Promise<ResponseFor<"decode">> } } | null = null;

  private async runDecode(state: EditState, startedAt: number | null): Promise<void> {
    const prompt: Prompt = { points: state.points, box: state.box };
    if (isEmptyPrompt(prompt) || !this.canDecode()) {
      this.history.replace({ ...state, decode: null });
      this.refreshCurrentLayer();
      return;
    }
    const generation = ++this.decodeGeneration;
    // Refinement: an existing annotation's mask, else the previous selected logits.
    let maskInput = state.maskInput;
    const prior = this.priorDecode(state);
    if (!maskInput && prior) {
      const plane = prior.lowSide * prior.lowSide;
      const index = prior.candidates[this.priorSelected(state)]?.index ?? 0;
      maskInput = prior.lowRes.slice(index * plane, (index + 1) * plane);
    }
    // A first click where the hover preview already ran (or is running) adopts its result.
    const p0 = prompt.points[0];
    const preview = this.lastPreview;
    let sent: { id: number; reply: Promise<ResponseFor<"decode">> } | null = null;
    if (preview && !maskInput && !prompt.box && prompt.points.length === 1 && p0 && p0.label === 1 &&
        preview.key === this.embeddingKey && Math.abs(preview.x - p0.x) < 0.5 && Math.abs(preview.y - p0.y) < 0.5) {
      samEngine().client.adopt(preview.sent.id);
      const adopted = await preview.sent.reply;
      if (!adopted.cancelled && !adopted.error) sent = preview.sent;
    }
    sent ??= samEngine().client.decode(this.embeddingKey, prompt, maskInput, this.displaySize());
    const reply = await sent.reply;
    if (generation !== this.decodeGeneration || this.history.current.points !== state.points || this.history.current.box !== state.box) return;
    if (reply.error || !reply.candidates || !reply.lowRes || !reply.outSize) {
      if (!reply.cancelled) this.error = `Decoding failed: ${reply.error ?? "no result"}`;
      this.requestUpdate();
      return;
    }
    this.decodeTimes.push(reply.decodeMs ?? 0);
    this.runTimes.push(reply.runMs ?? 0);
    const decode: DecodeResult = {
      id: sent.id,
      candidates: reply.candidates,
      lowRes: reply.lowRes,
      lowSide: reply.lowSide ?? 0,
      outSize: reply.outSize,
    };
    const selected = Math.max(0, reply.candidates.findIndex((c) => c.index === reply.preselected));
    this.history.replace({ ...this.history.current, decode, selected });
    if (startedAt !== null) this.pendingLatency = startedAt;
    this.refreshCurrentLayer();
  }

  /** The decode shown before `state` was pushed (for SAM's iterative refinement), only when
   * `state` adds prompts to the same object. */
  private priorDecodeCache: { state: EditState; decode: DecodeResult | null; selected: number } | null = null;

  private priorDecode(state: EditState): DecodeResult | null {
    return this.priorDecodeCache?.state === state ? this.priorDecodeCache.decode : null;
  }

  private priorSelected(state: EditState): number {
    return this.priorDecodeCache?.state === state ? this.priorDecodeCache.selected : 0;
  }

  private addPoint(x: number, y: number, label: 0 | 1, startedAt: number): void {
    if (!this.canDecode()) {
      this.notice = this.embeddingState === "pending" ? "The embedding is still being computed…" : "The model is not ready yet.";
      this.requestUpdate();
      return;
    }
    const before = this.state;
    const points = [...before.points, { x, y, label }];
    const next: EditState = { ...before, points, edited: null };
    this.priorDecodeCache = isEmptyPrompt(before) ? null : { state: next, decode: before.decode, selected: before.selected };
    this.history.push(next);
    this.previewVisible = false;
    void this.runDecode(next, startedAt);
    this.queueDraw();
    this.requestUpdate();
  }

  private setBox(box: Box, startedAt: number): void {
    if (!this.canDecode()) return;
    this.pushPrompt({ box: normaliseBox(box) }, startedAt);
  }

  private hover(x: number, y: number): void {
    if (this.tool !== "sam" || !this.canDecode() || this.state.points.length > 0 || this.state.box || this.state.edited) return;
    this.hoverPoint = [x, y];
    const now = performance.now();
    const wait = Math.max(0, HOVER_INTERVAL_MS - (now - this.lastHover));
    window.clearTimeout(this.hoverTimer);
    this.hoverTimer = window.setTimeout(() => {
      this.lastHover = performance.now();
      const point = this.hoverPoint;
      if (!point || !this.inside(point[0], point[1])) return;
      const generation = this.decodeGeneration;
      const sent = samEngine().client.preview(
        this.embeddingKey,
        { points: [{ x: point[0], y: point[1], label: 1 }], box: null },
        this.displaySize(),
      );
      this.lastPreview = { x: point[0], y: point[1], key: this.embeddingKey, sent };
      void sent.reply.then((reply) => {
          if (reply.cancelled || reply.error || generation !== this.decodeGeneration) return;
          if (this.state.points.length > 0 || this.state.box) return;
          const chosen = reply.candidates?.find((c) => c.index === reply.preselected);
          if (!chosen?.mask || !reply.outSize) return;
          this.paintLayer(this.previewLayer, chosen.mask, reply.outSize, this.labelColor(this.labelId));
          this.previewVisible = true;
          this.queueDraw();
        });
    }, wait);
  }

  private async selectCandidate(position: number): Promise<void> {
    const state = this.state;
    let decode = state.decode;
    if (!decode || position < 0 || position >= decode.candidates.length || state.edited) return;
    const candidate = decode.candidates[position];
    if (candidate && !candidate.mask) {
      // Large images: only the preselected candidate was rendered; render this one now.
      const reply = await samEngine().client.render(decode.id, candidate.index, decode.outSize);
      if (!reply.mask || this.state !== state) return;
      const mask = reply.mask;
      decode = { ...decode, candidates: decode.candidates.map((c, i) => (i === position ? { ...c, mask } : c)) };
    }
    this.history.push({ ...state, decode, selected: position });
    this.refreshCurrentLayer();
  }

  private clearPrompt(): void {
    this.decodeGeneration++;
    samEngine().client.cancelPreviews();
    if (this.state === EMPTY) return;
    this.history.push(EMPTY);
    this.previewVisible = false;
    this.notice = "";
    this.rebuildAnnotationLayer();
    this.refreshCurrentLayer();
  }

  private undo(): void {
    if (this.history.undo()) this.afterHistoryMove();
  }

  private redo(): void {
    if (this.history.redo()) this.afterHistoryMove();
  }

  private afterHistoryMove(): void {
    this.decodeGeneration++;
    this.previewVisible = false;
    this.rebuildAnnotationLayer();
    this.refreshCurrentLayer();
  }

  /** Full-resolution copy of the current mask (re-rendered from logits if the candidate was
   * rendered smaller). */
  private async fullMask(): Promise<Uint8Array | null> {
    const s = this.state;
    if (s.edited) return s.edited;
    const candidate = s.decode?.candidates[s.selected];
    if (!candidate?.mask || !s.decode) return null;
    const out = s.decode.outSize;
    if (out.width === this.size.width && out.height === this.size.height) return candidate.mask;
    const reply = await samEngine().client.render(s.decode.id, candidate.index, this.size);
    if (reply.mask) return reply.mask;
    return resizeMask(candidate.mask, out, this.size);
  }

  // ------------------------------------------------------------------ editing

  private async startEditing(annotationId: number, refine: boolean): Promise<void> {
    const a = this.annotations.get(annotationId);
    if (!a) return;
    this.selectedAnnotation = annotationId;
    this.labelId = a.data.label ?? this.labelId;
    let maskInput: Float32Array | null = null;
    if (refine && this.model && this.canDecode()) {
      const input = await samEngine().client.setEmbedding({ key: this.embeddingKey, url: this.embeddingKey });
      if (input.inputSize) {
        const side = 4 * (this.model.info.embeddingShape[2] ?? 16);
        maskInput = maskToLowResLogits(a.mask, this.size, input.inputSize, this.model.info.imgSize, side);
      }
    }
    this.history.push({ ...EMPTY, editing: annotationId, baseVersion: a.data.version, edited: a.mask.slice(), maskInput });
    this.notice = refine
      ? "Refining: add clicks or a box; the saved mask is used as the starting point."
      : "Editing: paint with B, erase with E, then press Enter to save.";
    this.rebuildAnnotationLayer();
    this.refreshCurrentLayer();
  }

  private async beginPaint(x: number, y: number, value: 0 | 1): Promise<void> {
    let base = await this.fullMask();
    if (!base && this.selectedAnnotation !== null && this.state.editing === null) {
      const a = this.annotations.get(this.selectedAnnotation);
      if (a) {
        this.history.push({ ...EMPTY, editing: a.data.id, baseVersion: a.data.version, edited: a.mask.slice() });
        this.rebuildAnnotationLayer();
        base = a.mask;
      }
    }
    const mask = base ? base.slice() : new Uint8Array(this.size.width * this.size.height);
    paintStroke(mask, this.size, [x, y], [x, y], this.brushRadius, value);
    this.drag = { kind: "paint", last: [x, y], mask, value };
    this.paintLayer(this.currentLayer, mask, this.size, this.labelColor(this.labelId));
    this.queueDraw();
  }

  private strokeLayer(from: [number, number], to: [number, number], value: 0 | 1): void {
    const ctx = this.currentLayer.getContext("2d");
    if (!ctx || this.currentLayer.width !== this.size.width) return;
    ctx.save();
    ctx.globalCompositeOperation = value ? "source-over" : "destination-out";
    ctx.strokeStyle = this.labelColor(this.labelId);
    ctx.lineCap = "round";
    ctx.lineWidth = this.brushRadius * 2;
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    ctx.restore();
  }

  private endPaint(mask: Uint8Array): void {
    this.history.push({ ...this.state, edited: mask, points: [], box: null, decode: null, maskInput: null });
    this.refreshCurrentLayer();
  }

  private hitVertex(clientX: number, clientY: number): { ring: number; vertex: number; rings: Ring[] } | null {
    if (!this.polygonView || this.selectedAnnotation === null) return null;
    const a = this.annotations.get(this.selectedAnnotation);
    if (!a) return null;
    const rect = this.canvas?.getBoundingClientRect();
    const px = clientX - (rect?.left ?? 0);
    const py = clientY - (rect?.top ?? 0);
    const rings = this.polygonsOf(a);
    for (let r = 0; r < rings.length; r++) {
      const ring = rings[r] as Ring;
      for (let i = 0; i < ring.length; i += 2) {
        const sx = (ring[i] as number) * this.scale + this.tx;
        const sy = (ring[i + 1] as number) * this.scale + this.ty;
        if (Math.abs(sx - px) <= 6 && Math.abs(sy - py) <= 6) return { ring: r, vertex: i / 2, rings: rings.map((x) => x.slice()) };
      }
    }
    return null;
  }

  private annotationAt(x: number, y: number): number | null {
    const xi = Math.floor(x);
    const yi = Math.floor(y);
    if (!this.inside(xi, yi)) return null;
    const list = [...this.annotations.values()].reverse();
    for (const a of list) if (a.mask[yi * this.size.width + xi]) return a.data.id;
    return null;
  }

  // ------------------------------------------------------------------ saving

  private async accept(): Promise<void> {
    if (this.saving) return;
    const mask = await this.fullMask();
    if (!mask || maskArea(mask) === 0) {
      this.notice = "Nothing to save: click on an object first.";
      this.requestUpdate();
      return;
    }
    const s = this.state;
    const candidate = s.edited ? null : s.decode?.candidates[s.selected];
    const rle = encodeRle(mask, this.size.height, this.size.width);
    const prompts = {
      points: s.points.map((p): [number, number] => [p.x, p.y]),
      labels: s.points.map((p) => p.label as number),
      box: s.box,
    };
    const source = s.edited && s.points.length === 0 && !s.box ? "manual" : s.box ? "box" : "click";
    const body: AnnotationInput = {
      label: this.labelId,
      rle,
      predicted_iou: candidate?.iou ?? null,
      source,
      prompts,
      model_key: this.model?.info.modelKey ?? "",
    };
    this.saving = true;
    this.requestUpdate();
    try {
      let saved: Annotation;
      if (s.editing !== null) {
        const existing = this.annotations.get(s.editing);
        if (!existing) throw new Error("The annotation was deleted meanwhile.");
        // If-Match carries the version the edit started from: a teammate's change made
        // meanwhile (even one already shown live) makes this a conflict, never an overwrite.
        const base = { ...existing.data, version: s.baseVersion ?? existing.data.version };
        saved = await this.patch(base, { label: body.label, rle, predicted_iou: body.predicted_iou, source, prompts }, mask);
      } else {
        saved = await api.createAnnotation(this.projectId, this.imageId, body);
      }
      this.storeAnnotation(saved);
      this.selectedAnnotation = saved.id;
      this.history.reset(EMPTY);
      this.notice = "Saved.";
      this.rebuildAnnotationLayer();
      this.refreshCurrentLayer();
      if (this.image?.status === "new") {
        api.updateImage(this.projectId, this.imageId, { status: "in_progress" }).catch(() => undefined);
        this.image = { ...this.image, status: "in_progress" };
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 0) {
        // The mask stays in the prompt history, so nothing is lost while offline.
        this.saveWhenOnline = true;
        this.notice = "Offline: the mask is kept and saves when the network is back.";
      } else if (!(error instanceof ConflictError)) {
        this.error = `Saving failed: ${message(error)}`;
      }
    } finally {
      this.saving = false;
      this.requestUpdate();
    }
  }

  private readonly onOnline = (): void => {
    if (!this.saveWhenOnline) return;
    this.saveWhenOnline = false;
    void this.accept();
  };

  /** PATCH with If-Match; a 412 opens the conflict dialog and throws ConflictError. */
  private async patch(existing: Annotation, data: Partial<AnnotationInput>, mask: Uint8Array | null): Promise<Annotation> {
    try {
      return await api.updateAnnotation(this.projectId, existing.id, existing.version, data);
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const current = (error.body as { current?: Annotation } | null)?.current;
        if (current) {
          this.storeAnnotation(current);
          this.conflict = { mine: data, mineMask: mask, current };
          this.rebuildAnnotationLayer();
          throw new ConflictError();
        }
      }
      throw error;
    }
  }

  private async resolveConflict(choice: "mine" | "theirs" | "merge"): Promise<void> {
    const conflict = this.conflict;
    if (!conflict) return;
    this.conflict = null;
    if (choice === "theirs") {
      this.history.reset(EMPTY);
      this.notice = "Kept your teammate's version.";
      this.rebuildAnnotationLayer();
      this.refreshCurrentLayer();
      return;
    }
    let data = conflict.mine;
    if (choice === "merge" && conflict.mineMask) {
      const theirs = decodeRle(conflict.current.rle);
      const merged = conflict.mineMask.slice();
      for (let i = 0; i < merged.length; i++) if (theirs[i]) merged[i] = 1;
      data = { ...data, rle: encodeRle(merged, this.size.height, this.size.width), label: data.label ?? conflict.current.label };
    }
    // The websocket can echo the saved version before the PATCH resolves; the prompt
    // history must already be closed then, or the echo reads as a teammate's edit.
    this.history.reset(EMPTY);
    try {
      const saved = await this.patch(conflict.current, data, conflict.mineMask);
      this.storeAnnotation(saved);
      this.notice = choice === "merge" ? "Merged both versions." : "Saved your version.";
      this.rebuildAnnotationLayer();
      this.refreshCurrentLayer();
    } catch (error) {
      if (!(error instanceof ConflictError)) {
        // keep the dialog (and the user's mask in it) so the choice can be retried
        this.conflict = conflict;
        this.error = `Saving failed: ${message(error)}`;
      }
      this.requestUpdate();
    }
  }

  private async deleteAnnotation(id: number): Promise<void> {
    const a = this.annotations.get(id);
    if (!a) return;
    try {
      await api.deleteAnnotation(this.projectId, id, a.data.version);
      this.annotations.delete(id);
      if (this.selectedAnnotation === id) this.selectedAnnotation = null;
      if (this.state.editing === id) this.history.reset(EMPTY);
      this.rebuildAnnotationLayer();
      this.refreshCurrentLayer();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        const current = (error.body as { current?: Annotation } | null)?.current;
        if (current) this.storeAnnotation(current);
        this.notice = "A teammate changed this annotation just now; look again before deleting.";
        this.rebuildAnnotationLayer();
      } else {
        this.error = `Deleting failed: ${message(error)}`;
      }
      this.requestUpdate();
    }
  }

  private async relabel(id: number, labelId: number | null): Promise<void> {
    const a = this.annotations.get(id);
    if (!a) return;
    try {
      const saved = await this.patch(a.data, { label: labelId }, null);
      this.storeAnnotation(saved);
      this.rebuildAnnotationLayer();
    } catch (error) {
      if (!(error instanceof ConflictError)) this.error = message(error);
      this.requestUpdate();
    }
  }

  private async addLabel(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const color = String(data.get("color") ?? "#4f7cff");
    if (!name || !this.project) return;
    try {
      const label = await api.createLabel(this.projectId, name, color);
      this.project = { ...this.project, labels: [...this.project.labels, label] };
      this.labelId = label.id;
      form.reset();
      this.refreshCurrentLayer();
    } catch (error) {
      this.error = `Could not add the label: ${message(error)}`;
      this.requestUpdate();
    }
  }

  private async setImageStatus(status: string): Promise<void> {
    try {
      this.image = await api.updateImage(this.projectId, this.imageId, { status });
      this.notice = `Image marked ${status.replace("_", " ")}.`;
    } catch (error) {
      this.error = `Could not change the status: ${message(error)}`;
    }
    this.requestUpdate();
  }

  private async segmentEverything(): Promise<void> {
    try {
      await api.segmentEverything(this.projectId, this.imageId);
      this.notice = "Segment everything started: proposals appear as they are found.";
    } catch (error) {
      this.error = `Segment everything failed: ${message(error)}`;
    }
    this.requestUpdate();
  }

  // ------------------------------------------------------------------ input

  private readonly onPointerDown = (event: PointerEvent): void => {
    const canvas = this.canvas;
    if (!canvas) return;
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = this.toImage(event.clientX, event.clientY);
    if (event.button === 1 || this.spaceDown) {
      this.drag = { kind: "pan", sx: event.clientX, sy: event.clientY, tx: this.tx, ty: this.ty };
      return;
    }
    if (this.tool !== "sam" && event.button === 0) {
      void this.beginPaint(x, y, this.tool === "brush" ? 1 : 0);
      return;
    }
    if (event.button === 0 && (event.ctrlKey || event.metaKey)) {
      const hit = this.annotationAt(x, y);
      this.selectedAnnotation = hit;
      this.queueDraw();
      this.requestUpdate();
      return;
    }
    const vertex = event.button === 0 ? this.hitVertex(event.clientX, event.clientY) : null;
    if (vertex) {
      this.drag = { kind: "vertex", ...vertex };
      return;
    }
    this.drag = { kind: "box", x0: x, y0: y, x1: x, y1: y, moved: false, button: event.button, t: performance.now() };
  };

  private readonly onPointerMove = (event: PointerEvent): void => {
    const [x, y] = this.toImage(event.clientX, event.clientY);
    const drag = this.drag;
    if (!drag) {
      this.hoverPoint = [x, y];
      if (this.tool === "sam") this.hover(x, y);
      else this.queueDraw();
      return;
    }
    switch (drag.kind) {
      case "pan":
        this.tx = drag.tx + (event.clientX - drag.sx);
        this.ty = drag.ty + (event.clientY - drag.sy);
        this.queueDraw();
        break;
      case "box": {
        drag.x1 = Math.max(0, Math.min(this.size.width, x));
        drag.y1 = Math.max(0, Math.min(this.size.height, y));
        if (Math.hypot((drag.x1 - drag.x0) * this.scale, (drag.y1 - drag.y0) * this.scale) > 5) drag.moved = true;
        this.previewVisible = false;
        this.queueDraw();
        break;
      }
      case "paint":
        paintStroke(drag.mask, this.size, drag.last, [x, y], this.brushRadius, drag.value);
        // Draw the stroke onto the layer too, instead of repainting the whole mask.
        this.strokeLayer(drag.last, [x, y], drag.value);
        drag.last = [x, y];
        this.hoverPoint = [x, y];
        this.queueDraw();
        break;
      case "vertex": {
        const ring = drag.rings[drag.ring];
        if (ring) {
          ring[drag.vertex * 2] = Math.max(0, Math.min(this.size.width, x));
          ring[drag.vertex * 2 + 1] = Math.max(0, Math.min(this.size.height, y));
        }
        this.queueDraw();
        break;
      }
    }
  };

  private readonly onPointerUp = (event: PointerEvent): void => {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.kind === "paint") {
      this.endPaint(drag.mask);
      return;
    }
    if (drag.kind === "vertex") {
      const id = this.selectedAnnotation;
      if (id !== null) {
        const mask = polygonsToMask(drag.rings, this.size);
        this.history.push({ ...EMPTY, editing: id, baseVersion: this.annotations.get(id)?.data.version ?? null, edited: mask });
        this.notice = "Polygon edited: press Enter to save.";
        this.rebuildAnnotationLayer();
        this.refreshCurrentLayer();
      }
      return;
    }
    if (drag.kind !== "box") return;
    const started = event.timeStamp || drag.t;
    if (drag.moved && drag.button === 0) {
      this.setBox([drag.x0, drag.y0, drag.x1, drag.y1], started);
      return;
    }
    if (!this.inside(drag.x0, drag.y0)) return;
    const negative = drag.button === 2 || event.altKey || event.shiftKey;
    this.addPoint(drag.x0, drag.y0, negative ? 0 : 1, started);
  };

  private readonly onWheel = (event: WheelEvent): void => {
    event.preventDefault();
    const rect = this.canvas?.getBoundingClientRect();
    const sx = event.clientX - (rect?.left ?? 0);
    const sy = event.clientY - (rect?.top ?? 0);
    const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
    const scale = Math.max(0.02, Math.min(64, this.scale * factor));
    this.tx = sx - ((sx - this.tx) * scale) / this.scale;
    this.ty = sy - ((sy - this.ty) * scale) / this.scale;
    this.scale = scale;
    this.queueDraw();
  };

  private readonly onKeyUp = (event: KeyboardEvent): void => {
    if (event.code === "Space") this.spaceDown = false;
  };

  private readonly onKeyDown = (event: KeyboardEvent): void => {
    const target = event.target as HTMLElement | null;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
    const key = event.key;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && (key === "z" || key === "Z")) {
      event.preventDefault();
      if (event.shiftKey) this.redo();
      else this.undo();
      return;
    }
    if (mod && (key === "y" || key === "Y")) {
      event.preventDefault();
      this.redo();
      return;
    }
    if (mod) return;
    switch (key) {
      case "1":
      case "2":
      case "3":
        void this.selectCandidate(Number(key) - 1);
        break;
      case "Enter":
      case "a":
        event.preventDefault();
        void this.accept();
        break;
      case "Escape":
        if (this.showHelp) this.showHelp = false;
        else this.clearPrompt();
        break;
      case "Delete":
      case "Backspace":
        if (this.selectedAnnotation !== null) void this.deleteAnnotation(this.selectedAnnotation);
        break;
      case "s":
        this.tool = "sam";
        break;
      case "b":
        this.tool = "brush";
        break;
      case "e":
        this.tool = "eraser";
        break;
      case "[":
        this.brushRadius = Math.max(1, Math.round(this.brushRadius / 1.25));
        break;
      case "]":
        this.brushRadius = Math.min(500, Math.round(this.brushRadius * 1.25) + 1);
        break;
      case "p":
        this.polygonView = !this.polygonView;
        break;
      case "f":
        this.fitView();
        break;
      case "r":
        if (this.selectedAnnotation !== null) void this.startEditing(this.selectedAnnotation, true);
        break;
      case "l": {
        const labels = this.labels;
        const index = labels.findIndex((l) => l.id === this.labelId);
        this.labelId = labels[(index + 1) % Math.max(1, labels.length)]?.id ?? null;
        this.refreshCurrentLayer();
        break;
      }
      case "o":
        this.opacity = this.opacity >= 0.9 ? 0.2 : Math.round((this.opacity + 0.1) * 10) / 10;
        break;
      case ".":
      case "PageDown":
        this.go(1);
        break;
      case ",":
      case "PageUp":
        this.go(-1);
        break;
      case "?":
      case "h":
        this.showHelp = !this.showHelp;
        break;
      case " ":
        this.spaceDown = true;
        event.preventDefault();
        break;
      default:
        return;
    }
    this.queueDraw();
    this.requestUpdate();
  };

  // ------------------------------------------------------------------ template

  private statusBanner(): TemplateResult | typeof nothing {
    if (this.modelError)
      return html`<div class="banner error" role="alert">The decoder could not be loaded: ${this.modelError}
        <button @click=${() => void this.loadModelAndEmbedding()}>Retry</button></div>`;
    if (!this.model) return html`<div class="banner" role="status" data-testid="model-loading"><span class="spinner"></span>Loading the SAM decoder…</div>`;
    switch (this.embeddingState) {
      case "loading":
        return html`<div class="banner" role="status"><span class="spinner"></span>Loading the image embedding…</div>`;
      case "pending":
        return html`<div class="banner" role="status" data-testid="embedding-pending"><span class="spinner"></span>Computing the image embedding on the server… clicks work as soon as it is ready.</div>`;
      case "failed":
        return html`<div class="banner error" role="alert" data-testid="embedding-failed">Embedding failed: ${this.embeddingError}
          <button data-testid="embedding-retry" @click=${() => void this.retryEmbedding()}>Retry</button></div>`;
      default:
        return nothing;
    }
  }

  private helpOverlay(): TemplateResult {
    const rows: [string, string][] = [
      ["Click / right-click", "positive / negative point (Alt or Shift + click: negative)"],
      ["Drag", "box (add clicks to refine it)"],
      ["Hover", "preview of the mask under the cursor"],
      ["1 – 3", "switch between candidate masks"],
      ["Enter or A", "accept the mask with the current label"],
      ["Esc", "clear the prompt"],
      ["Ctrl+Z / Ctrl+Shift+Z", "undo / redo a prompt or edit"],
      ["S / B / E", "SAM tool / brush / eraser; [ and ] change the brush size"],
      ["R", "refine the selected annotation with new clicks"],
      ["P", "polygon view (drag the vertices of the selected annotation)"],
      ["Ctrl+click", "select the annotation under the cursor"],
      ["Delete", "delete the selected annotation"],
      ["L / O", "next label / mask opacity"],
      ["Wheel / Space+drag / middle drag", "zoom / pan; F fits the image"],
      [", / .", "previous / next image"],
      ["? or H", "this help"],
    ];
    return html`<div class="overlay" @click=${() => { this.showHelp = false; this.requestUpdate(); }}>
      <div class="dialog" role="dialog" aria-label="Keyboard shortcuts" data-testid="help-overlay">
        <h2>Keyboard shortcuts</h2>
        <table>${rows.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</table>
      </div>
    </div>`;
  }

  private conflictDialog(c: Conflict): TemplateResult {
    const theirs = this.annotations.get(c.current.id);
    const mine = c.mineMask;
    return html`<div class="overlay">
      <div class="dialog" role="dialog" aria-label="Conflicting change" data-testid="conflict-dialog">
        <h2>Someone else changed this annotation</h2>
        <p>Their version ${c.current.version} was saved after you started editing
          (label ${this.labels.find((l) => l.id === c.current.label)?.name ?? "none"}, ${c.current.area} px${
            mine ? html`; yours has ${maskArea(mine)} px` : nothing
          }${theirs && mine ? html`, overlap IoU ${maskIoU(theirs.mask, mine).toFixed(2)}` : nothing}).
          Their version is shown on the canvas now.</p>
        <div class="row">
          <button data-testid="conflict-mine" @click=${() => void this.resolveConflict("mine")}>Keep mine</button>
          <button data-testid="conflict-theirs" @click=${() => void this.resolveConflict("theirs")}>Keep theirs</button>
          ${mine ? html`<button data-testid="conflict-merge" @click=${() => void this.resolveConflict("merge")}>Merge (union)</button>` : nothing}
        </div>
      </div>
    </div>`;
  }

  override render(): TemplateResult {
    const s = this.state;
    const current = this.currentMask();
    const list = [...this.annotations.values()];
    const index = this.neighbours.findIndex((i) => i.id === this.imageId);
    return html`<div class="workspace">
      <aside class="side">
        <nav class="crumbs"><a href="/projects/${this.projectId}">${this.project?.name ?? "Project"}</a> / <span>${this.image?.original_name ?? "…"}</span></nav>
        <div class="row">
          <button ?disabled=${index <= 0} @click=${() => this.go(-1)} title="Previous image (,)">‹</button>
          <span class="small muted">${index >= 0 ? `${index + 1} / ${this.neighbours.length}` : ""}</span>
          <button ?disabled=${index < 0 || index >= this.neighbours.length - 1} @click=${() => this.go(1)} title="Next image (.)">›</button>
          <span class="spacer"></span>
          <span class="conn conn-${this.connection}" data-testid="connection">${this.connection === "open" ? "live" : this.connection}</span>
        </div>
        <label class="small">Image status
          <select data-testid="image-status" @change=${(e: Event) => void this.setImageStatus((e.target as HTMLSelectElement).value)}>
            ${["new", "in_progress", "done", "reviewed"].map((st) => html`<option value=${st} ?selected=${this.image?.status === st}>${st.replace("_", " ")}</option>`)}
          </select>
        </label>
        ${this.presence.length
          ? html`<p class="presence small" data-testid="presence">Also here: ${this.presence.map((u) => html`<span class="avatar">${u.username}</span>`)}</p>`
          : nothing}
        <section>
          <h3>Tool</h3>
          <div class="seg">
            ${(["sam", "brush", "eraser"] as Tool[]).map(
              (t) => html`<button class=${this.tool === t ? "on" : ""} data-testid="tool-${t}" @click=${() => { this.tool = t; this.requestUpdate(); }}>${t === "sam" ? "SAM" : t}</button>`,
            )}
          </div>
          ${this.tool !== "sam"
            ? html`<label class="small">Brush ${this.brushRadius}px <input type="range" min="1" max="100" .value=${String(this.brushRadius)} @input=${(e: Event) => { this.brushRadius = Number((e.target as HTMLInputElement).value); }} /></label>`
            : nothing}
        </section>
        <section>
          <h3>Label</h3>
          <div class="labels">
            ${this.labels.map(
              (l) => html`<button class="label ${l.id === this.labelId ? "on" : ""}" data-testid="label-${l.name}" @click=${() => { this.labelId = l.id; this.refreshCurrentLayer(); }}>
                <span class="swatch" style="background:${l.color}"></span>${l.name}</button>`,
            )}
          </div>
          ${this.project?.role === "owner" || this.project?.role === "manager"
            ? html`<form class="row new-label" @submit=${(e: Event) => { e.preventDefault(); void this.addLabel(e.target as HTMLFormElement); }}>
                <input type="text" name="name" placeholder="New label" required maxlength="100" />
                <input type="color" name="color" value="#4f7cff" />
                <button type="submit">Add</button>
              </form>`
            : nothing}
          <label class="small">Opacity <input type="range" min="0.1" max="1" step="0.05" .value=${String(this.opacity)} @input=${(e: Event) => { this.opacity = Number((e.target as HTMLInputElement).value); this.queueDraw(); }} /></label>
        </section>
        <section>
          <h3>Mask</h3>
          ${s.decode && !s.edited
            ? html`<div class="candidates" data-testid="candidates">
                ${s.decode.candidates.map(
                  (c, i) => html`<button class="cand ${i === s.selected ? "on" : ""}" data-testid="candidate-${i + 1}" @click=${() => void this.selectCandidate(i)}>
                    <kbd>${i + 1}</kbd> IoU ${c.iou.toFixed(2)}</button>`,
                )}
              </div>`
            : html`<p class="small muted">${s.edited ? "Edited by hand." : "Click an object, or drag a box."}</p>`}
          <div class="row">
            <button class="primary" data-testid="accept" ?disabled=${!current || this.saving} @click=${() => void this.accept()}>${this.saving ? "Saving…" : s.editing !== null ? "Save changes" : "Accept"} <kbd>Enter</kbd></button>
            <button ?disabled=${s === EMPTY} @click=${() => this.clearPrompt()}>Clear</button>
          </div>
          <div class="row">
            <button ?disabled=${!this.history.canUndo} @click=${() => this.undo()} data-testid="undo">Undo</button>
            <button ?disabled=${!this.history.canRedo} @click=${() => this.redo()} data-testid="redo">Redo</button>
          </div>
        </section>
        <section>
          <h3>View</h3>
          <label class="small"><input type="checkbox" .checked=${this.polygonView} @change=${(e: Event) => { this.polygonView = (e.target as HTMLInputElement).checked; this.queueDraw(); }} data-testid="polygon-toggle" /> Polygons</label>
          ${this.polygonView
            ? html`<label class="small">Simplify ${this.tolerance.toFixed(1)}px <input type="range" min="0" max="10" step="0.5" data-testid="tolerance" .value=${String(this.tolerance)} @input=${(e: Event) => { this.tolerance = Number((e.target as HTMLInputElement).value); this.queueDraw(); this.requestUpdate(); }} /></label>`
            : nothing}
          <div class="row">
            <button @click=${() => this.fitView()}>Fit</button>
            <button @click=${() => void this.segmentEverything()} data-testid="segment-everything">Segment everything</button>
            <button @click=${() => { this.showHelp = true; this.requestUpdate(); }}>Shortcuts ?</button>
          </div>
        </section>
        <section class="grow">
          <h3>Annotations (${list.length})</h3>
          <ul class="ann-list" data-testid="annotation-list">
            ${list.map(
              (a) => html`<li class=${a.data.id === this.selectedAnnotation ? "on" : ""} data-testid="annotation-item" data-id=${a.data.id}>
                <span class="swatch" style="background:${this.labelColor(a.data.label)}"></span>
                <button class="link" title="${a.data.source}${a.data.predicted_iou !== null ? `, predicted IoU ${a.data.predicted_iou.toFixed(2)}` : ""}, ${a.data.area} px, v${a.data.version}" @click=${() => { this.selectedAnnotation = a.data.id; this.queueDraw(); this.requestUpdate(); }}>#${a.data.id}</button>
                <select @change=${(e: Event) => { const v = (e.target as HTMLSelectElement).value; void this.relabel(a.data.id, v ? Number(v) : null); }}>
                  <option value="" ?selected=${a.data.label === null}>—</option>
                  ${this.labels.map((l) => html`<option value=${l.id} ?selected=${l.id === a.data.label}>${l.name}</option>`)}
                </select>
                ${a.data.review_state !== "accepted" ? html`<span class="small muted">${a.data.review_state}</span>` : nothing}
                <span class="spacer"></span>
                <button class="link" title="Edit with brush / eraser" @click=${() => void this.startEditing(a.data.id, false)}>edit</button>
                <button class="link" title="Refine with clicks" @click=${() => void this.startEditing(a.data.id, true)}>refine</button>
                <button class="link danger" title="Delete" @click=${() => void this.deleteAnnotation(a.data.id)}>✕</button>
              </li>`,
            )}
          </ul>
        </section>
        <p class="small muted">${this.model ? `decoder ${this.model.info.variant} · ${this.model.backend}${this.model.backend === "wasm" ? ` ×${this.model.threads}` : ""}` : ""}${current?.iou != null ? ` · predicted IoU ${current.iou.toFixed(2)}` : ""}</p>
      </aside>
      <div class="stage-wrap">
        ${this.statusBanner()}
        ${this.connection === "reconnecting" ? html`<div class="banner warn" role="status" data-testid="reconnecting">Reconnecting to the live room… your edits still save.</div>` : nothing}
        ${this.error ? html`<div class="banner error" role="alert">${this.error} <button class="link" @click=${() => { this.error = ""; this.requestUpdate(); }}>dismiss</button></div>` : nothing}
        ${this.notice ? html`<div class="banner info" role="status" data-testid="notice">${this.notice}</div>` : nothing}
        <div class="stage" data-testid="stage">
          <canvas class="stage-canvas tool-${this.tool}" data-testid="canvas"
            @pointerdown=${this.onPointerDown} @pointermove=${this.onPointerMove} @pointerup=${this.onPointerUp}
            @pointerleave=${() => { this.hoverPoint = null; this.previewVisible = false; window.clearTimeout(this.hoverTimer); this.queueDraw(); }}
            @wheel=${this.onWheel} @contextmenu=${(e: Event) => e.preventDefault()}></canvas>
        </div>
      </div>
      ${this.showHelp ? this.helpOverlay() : nothing}
      ${this.conflict ? this.conflictDialog(this.conflict) : nothing}
    </div>`;
  }
}

class ConflictError extends Error {
  constructor() {
    super("conflict");
  }
}

customElements.define("annotation-workspace", AnnotationWorkspace);
