/** IEEE 754 half → single precision, via a 64 k lookup table built once. */
let table: Float32Array | null = null;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

export function fp16ToFloat32(halves: Uint16Array, out?: Float32Array): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = halfToFloat(i);
  }
  const lut = table;
  const result = out ?? new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) result[i] = lut[halves[i] as number] as number;
  return result;
}

/** int8 embedding layout: C float32 scales, then int8 data (1, C, H, W). */
export function int8ToFloat32(buffer: ArrayBuffer, channels: number, plane: number): Float32Array {
  const scales = new Float32Array(buffer, 0, channels);
  const data = new Int8Array(buffer, channels * 4, channels * plane);
  const out = new Float32Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    const s = scales[c] as number;
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = (data[base + i] as number) * s;
  }
  return out;
}
