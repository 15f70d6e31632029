/** Paints the stage: the image, the annotations' layer, the mask being edited or the hover
 * preview, polygons with their vertices, the box, the points and the brush cursor. Masks are
 * painted into offscreen canvases at image size once, and drawn scaled each frame. */
import { hexToRgb, paintMask, paintMaskInBox } from "../../ui/colors";
import type { Ring } from "../../sam/masks";
import { normaliseBox, type Box, type Point, type Size } from "../../sam/prompts";
import type { StoredAnnotation } from "../core/store";
import type { Viewport } from "../core/viewport";

export interface Scene {
  image: HTMLImageElement | null;
  size: Size;
  viewport: Viewport;
  opacity: number;
  showCurrent: boolean;
  showPreview: boolean;
  /** Outlines: every annotation's (polygon view, vertices on the selected one) or the selected
   * one's only. */
  outlines: { rings: Ring[]; color: string; selected: boolean }[];
  polygonView: boolean;
  box: Box | null;
  points: Point[];
  brush: { at: [number, number]; radius: number; erase: boolean } | null;
}

function fitLayer(layer: HTMLCanvasElement, size: Size): CanvasRenderingContext2D | null {
  if (layer.width !== size.width || layer.height !== size.height) {
    layer.width = size.width;
    layer.height = size.height;
  }
  return layer.getContext("2d");
}

export class StageRenderer {
  readonly annotations = document.createElement("canvas");
  readonly current = document.createElement("canvas");
  readonly preview = document.createElement("canvas");

  /** Repaint every saved annotation except the one being edited. */
  paintAnnotations(list: StoredAnnotation[], size: Size, colorOf: (label: number | null) => string, skip: number | null): void {
    if (size.width === 0) return;
    const ctx = fitLayer(this.annotations, size);
    if (!ctx) return;
    const data = ctx.createImageData(size.width, size.height);
    for (const a of list) {
      if (a.data.id === skip || a.mask.length !== size.width * size.height) continue;
      const alpha = a.data.review_state === "proposed" ? 150 : a.data.review_state === "rejected" ? 60 : 255;
      const box = a.data.bbox.length === 4 && a.data.bbox[2] ? a.data.bbox : [0, 0, size.width, size.height];
      paintMaskInBox(data.data, a.mask, size.width, box, hexToRgb(colorOf(a.data.label)), alpha);
    }
    ctx.putImageData(data, 0, 0);
  }

  paintMask(layer: HTMLCanvasElement, mask: Uint8Array, size: Size, color: string): void {
    const ctx = fitLayer(layer, size);
    if (!ctx) return;
    const data = ctx.createImageData(size.width, size.height);
    paintMask(data.data, mask, hexToRgb(color));
    ctx.putImageData(data, 0, 0);
  }

  /** One brush segment onto the current layer, instead of repainting the whole mask. */
  stroke(from: [number, number], to: [number, number], radius: number, erase: boolean, color: string): void {
    const ctx = this.current.getContext("2d");
    if (!ctx) return;
    ctx.save();
    ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    ctx.strokeStyle = color;
    ctx.lineCap = "round";
    ctx.lineWidth = radius * 2;
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    ctx.restore();
  }

  draw(canvas: HTMLCanvasElement, scene: Scene): void {
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const { viewport: v, size } = scene;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr * v.scale, 0, 0, dpr * v.scale, dpr * v.tx, dpr * v.ty);
    ctx.imageSmoothingEnabled = v.scale < 2;
    if (scene.image) ctx.drawImage(scene.image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = scene.opacity;
    ctx.drawImage(this.annotations, 0, 0, size.width, size.height);
    if (scene.showCurrent) {
      ctx.globalAlpha = Math.min(1, scene.opacity + 0.15);
      ctx.drawImage(this.current, 0, 0, size.width, size.height);
    } else if (scene.showPreview) {
      ctx.globalAlpha = scene.opacity * 0.7;
      ctx.drawImage(this.preview, 0, 0, size.width, size.height);
    }
    ctx.globalAlpha = 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (const outline of scene.outlines) this.outline(ctx, scene, outline);
    if (scene.box) {
      const [x0, y0, x1, y1] = normaliseBox(scene.box);
      const [sx, sy] = v.toScreen(x0, y0);
      ctx.strokeStyle = "#4f7cff";
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(sx, sy, (x1 - x0) * v.scale, (y1 - y0) * v.scale);
      ctx.setLineDash([]);
    }
    for (const p of scene.points) {
      const [sx, sy] = v.toScreen(p.x, p.y);
      ctx.beginPath();
      ctx.arc(sx, sy, 6, 0, Math.PI * 2);
      ctx.fillStyle = p.label === 1 ? "#2ecc71" : "#e74c3c";
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
    if (scene.brush) {
      const [sx, sy] = v.toScreen(scene.brush.at[0], scene.brush.at[1]);
      ctx.beginPath();
      ctx.arc(sx, sy, scene.brush.radius * v.scale, 0, Math.PI * 2);
      ctx.strokeStyle = scene.brush.erase ? "#e74c3c" : "#fff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  private outline(ctx: CanvasRenderingContext2D, scene: Scene, outline: Scene["outlines"][number]): void {
    const v = scene.viewport;
    ctx.strokeStyle = scene.polygonView ? outline.color : "#ffffff";
    ctx.lineWidth = scene.polygonView ? (outline.selected ? 2.5 : 1.5) : 2;
    for (const ring of outline.rings) {
      ctx.beginPath();
      for (let i = 0; i + 1 < ring.length; i += 2) {
        const [x, y] = v.toScreen(ring[i] as number, ring[i + 1] as number);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.closePath();
      ctx.stroke();
      if (scene.polygonView && outline.selected) {
        ctx.fillStyle = "#fff";
        for (let i = 0; i + 1 < ring.length; i += 2) {
          const [x, y] = v.toScreen(ring[i] as number, ring[i + 1] as number);
          ctx.fillRect(x - 3, y - 3, 6, 6);
        }
      }
    }
  }
}
