/** `window.samStudio`: what the browser test reads of the workspace (state, masks, timings). */
import type { Annotation } from "../api/types";
import { maskArea, maskIoU, resizeMask } from "../sam/masks";
import type { Size } from "../sam/prompts";
import { decodeRle, type CompressedRle } from "../sam/rle";
import type { EmbeddingMachine } from "./core/embedding";
import type { PromptSession } from "./core/session";
import type { AnnotationStore } from "./core/store";
import type { Viewport } from "./core/viewport";

export interface Metrics {
  /** Pointer event → mask painted, ms. */
  latencies: number[];
  /** Time spent in the worker per decode (session.run + mask rendering), ms. */
  decodeTimes: number[];
  /** Of which session.run, ms. */
  runTimes: number[];
  /** Repaints of the saved annotations' layer (at most one a frame), ms each. */
  layerPaints: number[];
}

export interface SamStudioHooks extends Metrics {
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

export interface Inspected {
  readonly size: Size;
  readonly tool: string;
  readonly connection: string;
  readonly session: PromptSession;
  readonly store: AnnotationStore;
  readonly embedding: EmbeddingMachine;
  readonly viewport: Viewport;
}

export function installHooks(w: Inspected, metrics: Metrics, canvasRect: () => DOMRect | null): void {
  const current = (): ReturnType<PromptSession["current"]> => w.session.current(w.size);
  window.samStudio = {
    ...metrics,
    state: () => {
      const s = w.session.state;
      const model = w.embedding.model;
      return {
        model: model?.info.variant ?? null,
        modelKey: model?.info.modelKey ?? null,
        embeddingKey: w.embedding.key,
        switching: w.embedding.switching,
        pendingModel: w.embedding.pending?.key ?? null,
        backend: model?.backend ?? null,
        threads: model?.threads ?? null,
        modelLoadMs: model?.loadMs ?? null,
        modelSessionsMs: model?.sessionsMs ?? null,
        modelFirstSessionMs: model?.firstSessionMs ?? null,
        embedding: w.embedding.state,
        connection: w.connection,
        tool: w.tool,
        editing: s.editing,
        edited: s.edited !== null,
        points: s.points.length,
        candidates: s.decode?.candidates.map((c) => c.iou) ?? [],
        selected: s.selected,
        annotations: w.store.size,
        crossOriginIsolated: globalThis.crossOriginIsolated,
      };
    },
    currentMask: () => {
      const mask = current();
      return mask ? { size: [mask.size.height, mask.size.width], area: maskArea(mask.mask) } : null;
    },
    iouWithRle: (rle: CompressedRle) => {
      const mask = current();
      if (!mask) return 0;
      const resized = resizeMask(mask.mask, mask.size, { height: rle.size[0], width: rle.size[1] });
      return maskIoU(resized, decodeRle(rle));
    },
    annotations: () => w.store.values().map((a) => a.data),
    imageToClient: (x: number, y: number) => {
      const rect = canvasRect();
      const [sx, sy] = w.viewport.toScreen(x, y);
      return [(rect?.left ?? 0) + sx, (rect?.top ?? 0) + sy];
    },
  };
}
