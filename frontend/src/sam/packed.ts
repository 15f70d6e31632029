/**
 * SAM 2's packed embedding (samapp.ml.sam2_embedding): several feature maps in one response.
 *
 * Layout, little-endian: "SAMF", u32 version (1), u32 n, n bytes of UTF-8 JSON (space-padded)
 * `{"dtype": "float16" | "int8", "tensors": [{"name", "shape": [C, h, w], "offset", "bytes"}]}`,
 * then each tensor at `offset` bytes after the header (8-byte aligned): float16 values, or C
 * float32 scales then C*h*w int8 (x = q * scale[c]).
 */
import { fp16ToFloat32, int8ToFloat32 } from "./fp16";

export interface PackedTensor {
  name: string;
  /** (C, h, w). */
  shape: number[];
  data: Float32Array;
}

interface Header {
  dtype: string;
  tensors: { name: string; shape: number[]; offset: number; bytes: number }[];
}

const MAGIC = "SAMF";

export function isPacked(buffer: ArrayBuffer): boolean {
  if (buffer.byteLength < 12) return false;
  return String.fromCharCode(...new Uint8Array(buffer, 0, 4)) === MAGIC;
}

/** Every tensor of a packed blob, as float32, in the blob's order. */
export function unpackTensors(buffer: ArrayBuffer): PackedTensor[] {
  if (!isPacked(buffer)) throw new Error("not a packed embedding (bad magic)");
  const view = new DataView(buffer);
  const version = view.getUint32(4, true);
  if (version !== 1) throw new Error(`unsupported packed embedding version ${version}`);
  const length = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 12, length))) as Header;
  const start = 12 + length;
  return header.tensors.map(({ name, shape, offset, bytes }) => {
    const [c = 0, h = 0, w = 0] = shape;
    const at = start + offset;
    if (at + bytes > buffer.byteLength) throw new Error(`packed tensor ${name} runs past the end`);
    const data =
      header.dtype === "int8"
        ? int8ToFloat32(buffer.slice(at, at + bytes), c, h * w)
        : fp16ToFloat32(new Uint16Array(buffer, at, c * h * w));
    return { name, shape, data };
  });
}
