/**
 * COCO run-length encoding, bit-compatible with pycocotools (maskApi.c).
 *
 * Masks are row-major `Uint8Array`s of `height * width` (nonzero = foreground), as
 * canvases use; COCO counts run over the mask in column-major (Fortran) order, starting
 * with a run of zeros. The compressed string form is pycocotools' `rleToString`: each
 * count (after the third, as a delta to the count two places back) is written as a
 * LEB128-like sequence of 5-bit groups with a continuation bit, offset by 48 ('0').
 */

export interface CompressedRle {
  size: [number, number];
  counts: string;
}

/** Uncompressed counts of a row-major mask, in COCO's column-major order. */
export function maskToCounts(mask: Uint8Array, height: number, width: number): number[] {
  if (mask.length !== height * width) throw new Error("mask size does not match height*width");
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const value = mask[y * width + x] ? 1 : 0;
      if (value !== current) {
        counts.push(run);
        run = 0;
        current = value;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

/** Row-major mask (0/1) from uncompressed column-major counts. */
export function countsToMask(counts: readonly number[], height: number, width: number): Uint8Array {
  const mask = new Uint8Array(height * width);
  let position = 0;
  let value = 0;
  for (const count of counts) {
    if (value === 1) {
      for (let i = position; i < position + count; i++) {
        const x = Math.floor(i / height);
        const y = i - x * height;
        mask[y * width + x] = 1;
      }
    }
    position += count;
    value = 1 - value;
  }
  if (position !== height * width) throw new Error(`RLE covers ${position} pixels, expected ${height * width}`);
  return mask;
}

/** pycocotools rleToString. */
export function countsToString(counts: readonly number[]): string {
  let out = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i] ?? 0;
    if (i > 2) x -= counts[i - 2] ?? 0;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/** pycocotools rleFrString. */
export function stringToCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error("truncated RLE string");
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    const m = counts.length;
    if (m > 2) x += counts[m - 2] ?? 0;
    counts.push(x);
  }
  return counts;
}

export function encodeRle(mask: Uint8Array, height: number, width: number): CompressedRle {
  return { size: [height, width], counts: countsToString(maskToCounts(mask, height, width)) };
}

export function decodeRle(rle: CompressedRle): Uint8Array {
  const [height, width] = rle.size;
  return countsToMask(stringToCounts(rle.counts), height, width);
}

/** Foreground pixel count straight from the counts. */
export function rleArea(rle: CompressedRle): number {
  const counts = stringToCounts(rle.counts);
  let area = 0;
  for (let i = 1; i < counts.length; i += 2) area += counts[i] ?? 0;
  return area;
}
