/** Downloads of the decoder worker: ONNX graphs (kept in Cache Storage) and image embeddings
 * (fp16 or int8 + scales, converted to float32; SAM 2's packed maps, see `packed.ts`). */
import type * as ortWasm from "onnxruntime-web/wasm";
import { DecoderError } from "./protocol";
import { fp16ToFloat32, int8ToFloat32 } from "./fp16";
import { unpackTensors } from "./packed";
import type { Size } from "./prompts";

export interface Embedding {
  /** `image_embeddings`, (1, C, h, w). */
  tensor: ortWasm.Tensor;
  inputSize: Size;
  originalSize: Size;
  /** Further decoder inputs from the same response (SAM 2's high-resolution maps). */
  extra?: Record<string, ortWasm.Tensor>;
}

async function download(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new DecoderError(`decoder download failed: HTTP ${response.status}`, { status: response.status });
  return await response.arrayBuffer();
}

export async function fetchModel(url: string, sha256: string): Promise<ArrayBuffer> {
  const cacheKey = `${url}#${sha256}`;
  const cacheStorage = (globalThis as { caches?: CacheStorage }).caches;
  let cache: Cache | null;
  try {
    cache = cacheStorage ? await cacheStorage.open("sam-decoders-v1") : null;
    const hit = await cache?.match(cacheKey);
    if (hit) return await hit.arrayBuffer();
  } catch {
    // Cache Storage unavailable (opaque origin, quota): the HTTP cache still helps.
    cache = null;
  }
  const bytes = await download(url);
  const copy = new Response(bytes.slice(0), { headers: { "Content-Type": "application/octet-stream" } });
  await cache?.put(cacheKey, copy).catch(() => undefined);
  return bytes;
}

function parseSize(header: string | null): Size | null {
  if (!header) return null;
  const [h, w] = header.split(",").map((v) => Number.parseInt(v.trim(), 10));
  if (!h || !w) return null;
  return { height: h, width: w };
}

export async function fetchEmbedding(ort: typeof ortWasm, url: string): Promise<Embedding> {
  const separator = url.includes("?") ? "&" : "?";
  const response = await fetch(`${url}${separator}dtype=fp16`, { credentials: "same-origin" });
  if (!response.ok) {
    let status = "missing";
    try {
      const body = (await response.json()) as { status?: string; detail?: string };
      status = body.status ?? body.detail ?? status;
    } catch {
      // not JSON
    }
    throw new DecoderError(`embedding not ready (${status})`, { status: response.status, embeddingStatus: status });
  }
  const shape = (response.headers.get("X-Embedding-Shape") ?? "").split(",").map((v) => Number.parseInt(v.trim(), 10));
  if (shape.length === 3) shape.unshift(1);
  const dtype = response.headers.get("X-Embedding-Dtype") ?? "float16";
  const inputSize = parseSize(response.headers.get("X-Input-Size"));
  const originalSize = parseSize(response.headers.get("X-Original-Size"));
  if (shape.length !== 4 || shape.some((v) => !Number.isFinite(v)) || !inputSize || !originalSize) {
    throw new Error("embedding response lacks its shape headers");
  }
  const buffer = await response.arrayBuffer();
  if (response.headers.get("X-Embedding-Layout") === "packed") {
    const [main, ...rest] = unpackTensors(buffer);
    if (!main) throw new Error("packed embedding holds no tensor");
    const extra: Record<string, ortWasm.Tensor> = {};
    for (const t of rest) extra[t.name] = new ort.Tensor("float32", t.data, [1, ...t.shape]);
    return { tensor: new ort.Tensor("float32", main.data, [1, ...main.shape]), inputSize, originalSize, extra };
  }
  const [, c = 0, h = 0, w = 0] = shape;
  let data: Float32Array;
  if (dtype.startsWith("int8")) data = int8ToFloat32(buffer, c, h * w);
  else if (dtype.includes("32")) data = new Float32Array(buffer);
  else data = fp16ToFloat32(new Uint16Array(buffer));
  return { tensor: new ort.Tensor("float32", data, shape), inputSize, originalSize };
}
