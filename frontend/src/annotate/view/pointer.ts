/** Pointer input on the stage: clicks and boxes (SAM prompts), brush strokes, polygon vertex
 * drags, pan and wheel zoom. It keeps the drag in progress and calls back into the host. */
import { paintStroke, type Ring } from "../../sam/masks";
import type { Box, Size } from "../../sam/prompts";
import { clampTo, inside, type Viewport } from "../core/viewport";
import type { Tool } from "./panels";

export interface PointerHost {
  readonly viewport: Viewport;
  readonly size: Size;
  readonly tool: Tool;
  readonly brushRadius: number;
  readonly spaceDown: boolean;
  /** The polygons whose vertices can be dragged (the selected annotation's in polygon view). */
  editableRings(): Ring[] | null;
  /** The mask a stroke starts from (a copy is painted). */
  paintBase(): Promise<Uint8Array | null>;
  stroke(from: [number, number], to: [number, number], erase: boolean): void;
  strokeDone(mask: Uint8Array): void;
  verticesMoved(rings: Ring[]): void;
  selectAt(x: number, y: number): void;
  addPoint(x: number, y: number, label: 0 | 1, startedAt: number): void;
  setBox(box: Box, startedAt: number): void;
  hover(x: number, y: number): void;
  leave(): void;
  redraw(): void;
}

type Drag =
  | { kind: "pan"; sx: number; sy: number; tx: number; ty: number }
  | { kind: "box"; x0: number; y0: number; x1: number; y1: number; moved: boolean; button: number; t: number }
  | { kind: "paint"; last: [number, number]; mask: Uint8Array | null; value: 0 | 1 }
  | { kind: "vertex"; ring: number; vertex: number; rings: Ring[] };

export class PointerInput {
  private drag: Drag | null = null;
  /** The image point under the pointer (brush cursor). */
  cursor: [number, number] | null = null;

  constructor(
    private readonly host: PointerHost,
    private readonly canvas: () => HTMLCanvasElement | null,
  ) {}

  /** The box being dragged, to draw. */
  get box(): Box | null {
    const d = this.drag;
    return d?.kind === "box" && d.moved ? [d.x0, d.y0, d.x1, d.y1] : null;
  }

  /** The polygons being reshaped, to draw instead of the stored ones. */
  get rings(): Ring[] | null {
    return this.drag?.kind === "vertex" ? this.drag.rings : null;
  }

  private local(event: MouseEvent): [number, number] {
    const rect = this.canvas()?.getBoundingClientRect();
    return [event.clientX - (rect?.left ?? 0), event.clientY - (rect?.top ?? 0)];
  }

  readonly down = (event: PointerEvent): void => {
    const host = this.host;
    this.canvas()?.setPointerCapture(event.pointerId);
    const [sx, sy] = this.local(event);
    const [x, y] = host.viewport.toImage(sx, sy);
    if (event.button === 1 || host.spaceDown) {
      this.drag = { kind: "pan", sx: event.clientX, sy: event.clientY, tx: host.viewport.tx, ty: host.viewport.ty };
      return;
    }
    if (host.tool !== "sam" && event.button === 0) {
      const value = host.tool === "brush" ? 1 : 0;
      const drag: Drag = { kind: "paint", last: [x, y], mask: null, value };
      this.drag = drag;
      void host.paintBase().then((base) => {
        const mask = base ? base.slice() : new Uint8Array(host.size.width * host.size.height);
        paintStroke(mask, host.size, [x, y], [x, y], host.brushRadius, value);
        drag.mask = mask;
        if (this.drag !== drag) host.strokeDone(mask);
      });
      return;
    }
    if (event.button === 0 && (event.ctrlKey || event.metaKey)) {
      host.selectAt(x, y);
      return;
    }
    const rings = event.button === 0 ? host.editableRings() : null;
    const hit = rings ? host.viewport.vertexAt(rings, sx, sy) : null;
    if (rings && hit) {
      this.drag = { kind: "vertex", ...hit, rings: rings.map((r) => r.slice()) };
      return;
    }
    this.drag = { kind: "box", x0: x, y0: y, x1: x, y1: y, moved: false, button: event.button, t: performance.now() };
  };

  readonly move = (event: PointerEvent): void => {
    const host = this.host;
    const [sx, sy] = this.local(event);
    const [x, y] = host.viewport.toImage(sx, sy);
    this.cursor = [x, y];
    const drag = this.drag;
    if (!drag) {
      if (host.tool === "sam") host.hover(x, y);
      else host.redraw();
      return;
    }
    switch (drag.kind) {
      case "pan":
        host.viewport.panFrom(drag, event.clientX - drag.sx, event.clientY - drag.sy);
        break;
      case "box": {
        [drag.x1, drag.y1] = clampTo(host.size, x, y);
        const scale = host.viewport.scale;
        if (Math.hypot((drag.x1 - drag.x0) * scale, (drag.y1 - drag.y0) * scale) > 5) drag.moved = true;
        break;
      }
      case "paint":
        if (drag.mask) paintStroke(drag.mask, host.size, drag.last, [x, y], host.brushRadius, drag.value);
        host.stroke(drag.last, [x, y], drag.value === 0);
        drag.last = [x, y];
        break;
      case "vertex": {
        const ring = drag.rings[drag.ring];
        if (ring) [ring[drag.vertex * 2], ring[drag.vertex * 2 + 1]] = clampTo(host.size, x, y);
        break;
      }
    }
    host.redraw();
  };

  readonly up = (event: PointerEvent): void => {
    const drag = this.drag;
    this.drag = null;
    const host = this.host;
    if (drag?.kind === "paint") {
      if (drag.mask) host.strokeDone(drag.mask);
    } else if (drag?.kind === "vertex") {
      host.verticesMoved(drag.rings);
    } else if (drag?.kind === "box") {
      const started = event.timeStamp || drag.t;
      if (drag.moved && drag.button === 0) host.setBox([drag.x0, drag.y0, drag.x1, drag.y1], started);
      else if (inside(host.size, drag.x0, drag.y0)) {
        const negative = drag.button === 2 || event.altKey || event.shiftKey;
        host.addPoint(drag.x0, drag.y0, negative ? 0 : 1, started);
      }
    }
    host.redraw();
  };

  readonly leave = (): void => {
    this.cursor = null;
    this.host.leave();
  };

  readonly wheel = (event: WheelEvent): void => {
    event.preventDefault();
    const [sx, sy] = this.local(event);
    this.host.viewport.zoomAt(sx, sy, event.deltaY, event.deltaMode);
    this.host.redraw();
  };
}
