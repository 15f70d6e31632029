export function hexToRgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  if (!m?.[1]) return [255, 64, 64];
  const v = Number.parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Paint masks into an RGBA buffer (later masks on top). */
export function paintMask(
  rgba: Uint8ClampedArray,
  mask: Uint8Array,
  color: [number, number, number],
  alpha = 255,
): void {
  paintRun(rgba, mask, 0, mask.length, color, alpha);
}

/** Paint the foreground pixels of mask[start, end) into `rgba`. */
function paintRun(
  rgba: Uint8ClampedArray,
  mask: Uint8Array,
  start: number,
  end: number,
  color: [number, number, number],
  alpha: number,
): void {
  for (let i = start; i < end; i++) {
    if (mask[i]) {
      const o = i * 4;
      rgba[o] = color[0];
      rgba[o + 1] = color[1];
      rgba[o + 2] = color[2];
      rgba[o + 3] = alpha;
    }
  }
}

/** paintMask restricted to a COCO box [x, y, w, h] (an annotation's bbox). */
export function paintMaskInBox(
  rgba: Uint8ClampedArray,
  mask: Uint8Array,
  width: number,
  box: readonly number[],
  color: [number, number, number],
  alpha = 255,
): void {
  const [bx = 0, by = 0, bw = width, bh = mask.length / width] = box;
  const height = mask.length / width;
  const x0 = Math.max(0, Math.floor(bx));
  const y0 = Math.max(0, Math.floor(by));
  const x1 = Math.min(width, Math.ceil(bx + bw));
  const y1 = Math.min(height, Math.ceil(by + bh));
  for (let y = y0; y < y1; y++) paintRun(rgba, mask, y * width + x0, y * width + x1, color, alpha);
}

export const UNLABELLED_COLOR = "#ffd400";
