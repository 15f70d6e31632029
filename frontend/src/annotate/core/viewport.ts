/** The view transform of the stage: screen = image * scale + (tx, ty), in CSS pixels of the
 * canvas. */
import type { Ring } from "../../sam/masks";
import type { Size } from "../../sam/prompts";

const MIN_SCALE = 0.02;
const MAX_SCALE = 64;

export class Viewport {
  scale = 1;
  tx = 0;
  ty = 0;

  /** Nothing was fitted, zoomed or panned yet. */
  get pristine(): boolean {
    return this.scale === 1 && this.tx === 0 && this.ty === 0;
  }

  /** Fit `image` into `view`, centred, with a 5 % margin. */
  fit(view: Size, image: Size): void {
    if (image.width === 0 || image.height === 0) return;
    this.scale = Math.min(view.width / image.width, view.height / image.height) * 0.95;
    this.tx = (view.width - image.width * this.scale) / 2;
    this.ty = (view.height - image.height * this.scale) / 2;
  }

  toImage(sx: number, sy: number): [number, number] {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  toScreen(x: number, y: number): [number, number] {
    return [x * this.scale + this.tx, y * this.scale + this.ty];
  }

  /** Zoom by a wheel step (`deltaMode` 1: lines, else pixels) keeping the point under the
   * cursor in place. */
  zoomAt(sx: number, sy: number, deltaY: number, deltaMode: number): void {
    const factor = Math.exp(-deltaY * (deltaMode === 1 ? 0.05 : 0.0015));
    const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.scale * factor));
    this.tx = sx - ((sx - this.tx) * scale) / this.scale;
    this.ty = sy - ((sy - this.ty) * scale) / this.scale;
    this.scale = scale;
  }

  /** Pan to `origin` moved by (dx, dy) screen pixels. */
  panFrom(origin: { tx: number; ty: number }, dx: number, dy: number): void {
    this.tx = origin.tx + dx;
    this.ty = origin.ty + dy;
  }

  /** The polygon vertex within `radius` screen pixels of (sx, sy). */
  vertexAt(rings: Ring[], sx: number, sy: number, radius = 6): { ring: number; vertex: number } | null {
    for (const [r, ring] of rings.entries()) {
      for (let i = 0; i + 1 < ring.length; i += 2) {
        const [vx, vy] = this.toScreen(ring[i] as number, ring[i + 1] as number);
        if (Math.abs(vx - sx) <= radius && Math.abs(vy - sy) <= radius) return { ring: r, vertex: i / 2 };
      }
    }
    return null;
  }
}

export function inside(size: Size, x: number, y: number): boolean {
  return x >= 0 && y >= 0 && x < size.width && y < size.height;
}

export function clampTo(size: Size, x: number, y: number): [number, number] {
  return [Math.max(0, Math.min(size.width, x)), Math.max(0, Math.min(size.height, y))];
}
