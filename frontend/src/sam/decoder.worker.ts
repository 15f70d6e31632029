/// <reference lib="webworker" />
/**
 * SAM's prompt encoder + mask decoder, run with onnxruntime-web off the UI thread.
 *
 * One InferenceSession per model, created once (model bytes kept in Cache Storage so a
 * reload does not download them again) and warmed up with a dummy prompt. A fast variant
 * (samapp.ml.fast_decoder) brings two more: its prepare graph, run once per embedding when it
 * opens, and the single-graph decoder used for clicks that refine a mask. Embeddings are
 * fetched as fp16 (or int8), converted to float32 here, and kept in a small LRU so that
 * prefetched neighbours open instantly. Decodes run one at a time in arrival order; queued
 * ones can be cancelled (stale hover previews), and the reply carries low-res logits for
 * refinement plus thresholded masks at the requested size.
 */
import * as ortWasm from "onnxruntime-web/wasm";
import { fp16ToFloat32, int8ToFloat32 } from "./fp16";
import { lowResToMask } from "./masks";
import { buildPromptTensors, candidateIndices, type Size } from "./prompts";
import type {
  DecodeCandidate,
  DecoderModelInfo,
  EmbeddingRef,
  RequestFor,
  WorkerRequest,
  WorkerResponse,
} from "./protocol";

type Ort = typeof ortWasm;

interface Scope {
  postMessage(message: WorkerResponse, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent<WorkerRequest>) => void): void;
  crossOriginIsolated: boolean;
  navigator: { hardwareConcurrency: number; gpu?: { requestAdapter(): Promise<unknown> } };
}

const scope = globalThis as unknown as Scope;

interface Embedding {
  tensor: ortWasm.Tensor;
  inputSize: Size;
  originalSize: Size;
}

class EmbeddingNotReady extends Error {
  constructor(
    readonly status: number,
    readonly embeddingStatus: string,
  ) {
    super(`embedding not ready (${embeddingStatus})`);
  }
}

type Tensors = Record<string, ortWasm.Tensor>;

let ort: Ort = ortWasm;
let session: ortWasm.InferenceSession | null = null;
let prepareSession: ortWasm.InferenceSession | null = null;
let maskInputSession: ortWasm.InferenceSession | null = null;
let model: DecoderModelInfo | null = null;
/** Prepare-graph outputs per embedding key; ViT-B's are 10 MB, so only the latest few. */
const prepared = new Map<string, Promise<Tensors>>();
const PREPARED_CACHE = 2;
let lowSide = 0;
let zeroMask: Float32Array = new Float32Array(0);
const embeddings = new Map<string, Embedding>();
const pending = new Map<string, Promise<Embedding>>();
const urls = new Map<string, string>();
const EMBEDDING_CACHE = 8;
const RENDER_ALL_PIXELS = 512 * 512;

interface LastDecode {
  id: number;
  logits: Float32Array;
  side: number;
  embedding: Embedding;
}
const lastDecodes: LastDecode[] = [];

function reply(message: WorkerResponse, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function fetchModel(url: string, sha256: string): Promise<ArrayBuffer> {
  const cacheKey = `${url}#${sha256}`;
  const cacheStorage = (globalThis as { caches?: CacheStorage }).caches;
  if (cacheStorage) {
    try {
      const cache = await cacheStorage.open("sam-decoders-v1");
      const hit = await cache.match(cacheKey);
      if (hit) return await hit.arrayBuffer();
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`decoder download failed: HTTP ${response.status}`);
      const bytes = await response.arrayBuffer();
      await cache.put(cacheKey, new Response(bytes.slice(0), { headers: { "Content-Type": "application/octet-stream" } }));
      return bytes;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("decoder download failed")) throw error;
      // Cache Storage unavailable (opaque origin, quota): fall back to the HTTP cache.
    }
  }
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`decoder download failed: HTTP ${response.status}`);
  return await response.arrayBuffer();
}

// Runs of the sessions (decodes, prepares, warm-ups) go one at a time through this chain.
let runChain: Promise<unknown> = Promise.resolve();
function exclusive<T>(run: () => Promise<T>): Promise<T> {
  const result = runChain.then(run);
  runChain = result.catch(() => undefined);
  return result;
}

function feeds(
  target: ortWasm.InferenceSession,
  embedding: ortWasm.Tensor,
  preparedTensors: Tensors | null,
  pointCoords: Float32Array,
  pointLabels: Float32Array,
  n: number,
  maskInput: Float32Array | null,
  originalSize: Size,
): Tensors {
  const all: Record<string, () => ortWasm.Tensor> = {
    image_embeddings: () => embedding,
    point_coords: () => new ort.Tensor("float32", pointCoords, [1, n, 2]),
    point_labels: () => new ort.Tensor("float32", pointLabels, [1, n]),
    mask_input: () => new ort.Tensor("float32", maskInput ?? zeroMask, [1, 1, lowSide, lowSide]),
    has_mask_input: () => new ort.Tensor("float32", new Float32Array([maskInput ? 1 : 0]), [1]),
    orig_im_size: () =>
      new ort.Tensor("float32", new Float32Array([originalSize.height, originalSize.width]), [2]),
  };
  for (const [name, tensor] of Object.entries(preparedTensors ?? {})) all[name] = () => tensor;
  const result: Tensors = {};
  for (const name of target.inputNames) {
    const make = all[name];
    if (!make) throw new Error(`decoder input ${name} is not supported`);
    result[name] = make();
  }
  return result;
}

async function createSession(
  file: { url: string; sha256: string },
  providers: string[],
): Promise<ortWasm.InferenceSession> {
  const bytes = await fetchModel(file.url, file.sha256);
  return await ort.InferenceSession.create(new Uint8Array(bytes), {
    executionProviders: providers,
    graphOptimizationLevel: "all",
  });
}

/** The prepare-graph outputs of an embedding (computed once, shared by concurrent callers),
 * or null when the decoder has no prepare graph. */
function preparedFor(key: string, embedding: ortWasm.Tensor): Promise<Tensors> | null {
  const graph = prepareSession;
  if (!graph) return null;
  const hit = prepared.get(key);
  if (hit) {
    prepared.delete(key);
    prepared.set(key, hit);
    return hit;
  }
  const promise = exclusive(() => graph.run({ image_embeddings: embedding }));
  prepared.set(key, promise);
  promise.catch(() => prepared.delete(key));
  while (prepared.size > PREPARED_CACHE) {
    const oldest = prepared.keys().next().value;
    if (oldest === undefined) break;
    prepared.delete(oldest);
  }
  return promise;
}

/** The session and inputs of one decode: a fast decoder's click graph, or, for a click that
 * refines a mask, its mask-input decoder. */
async function decodeFeeds(
  embeddingKey: string,
  embedding: Embedding,
  pointCoords: Float32Array,
  pointLabels: Float32Array,
  n: number,
  maskInput: Float32Array | null,
): Promise<{ target: ortWasm.InferenceSession; inputs: Tensors }> {
  const main = session as ortWasm.InferenceSession;
  const target = maskInput && maskInputSession ? maskInputSession : main;
  const ready = target === main ? await preparedFor(embeddingKey, embedding.tensor) : null;
  const inputs = feeds(target, embedding.tensor, ready, pointCoords, pointLabels, n, maskInput, embedding.originalSize);
  return { target, inputs };
}

async function init(request: RequestFor<"init">): Promise<void> {
  const started = performance.now();
  try {
    let backend: "webgpu" | "wasm" = "wasm";
    if (request.webgpu && scope.navigator.gpu) {
      try {
        const adapter = await scope.navigator.gpu.requestAdapter();
        if (adapter) {
          ort = (await import("onnxruntime-web/webgpu")) as unknown as Ort;
          backend = "webgpu";
        }
      } catch {
        backend = "wasm";
      }
    }
    ort.env.wasm.wasmPaths = request.wasmPaths;
    ort.env.wasm.numThreads = scope.crossOriginIsolated ? request.threads : 1;
    ort.env.wasm.simd = true;
    ort.env.logLevel = "error";
    const providers = backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
    const info = request.model;
    session = await createSession(info, providers);
    prepareSession = info.prepare ? await createSession(info.prepare, providers) : null;
    maskInputSession = info.maskInputModel ? await createSession(info.maskInputModel, providers) : null;
    prepared.clear();
    model = info;
    const [, , h] = info.embeddingShape;
    lowSide = 4 * (h ?? 16);
    zeroMask = new Float32Array(lowSide * lowSide);
    // Warm-up of every graph: the first run allocates and compiles kernels.
    const count = info.embeddingShape.reduce((a, b) => a * b, 1);
    const dummy: Embedding = {
      tensor: new ort.Tensor("float32", new Float32Array(count), info.embeddingShape),
      inputSize: { height: info.imgSize, width: info.imgSize },
      originalSize: { height: info.imgSize, width: info.imgSize },
    };
    const prompt = buildPromptTensors({ points: [{ x: 1, y: 1, label: 1 }], box: null }, dummy.originalSize, dummy.inputSize);
    for (const maskInput of maskInputSession ? [null, zeroMask] : [null]) {
      const { target, inputs } = await decodeFeeds("", dummy, prompt.pointCoords, prompt.pointLabels, prompt.numPoints, maskInput);
      await exclusive(() => target.run(inputs));
    }
    prepared.clear();
    reply({
      action: "init",
      id: request.id,
      backend,
      threads: ort.env.wasm.numThreads ?? 1,
      crossOriginIsolated: scope.crossOriginIsolated,
      loadMs: performance.now() - started,
    });
  } catch (error) {
    reply({ action: "init", id: request.id, error: errorText(error) });
  }
}

function parseSize(header: string | null): Size | null {
  if (!header) return null;
  const [h, w] = header.split(",").map((v) => Number.parseInt(v.trim(), 10));
  if (!h || !w) return null;
  return { height: h, width: w };
}

async function loadEmbedding(ref: EmbeddingRef): Promise<Embedding> {
  const cached = embeddings.get(ref.key);
  if (cached) {
    embeddings.delete(ref.key);
    embeddings.set(ref.key, cached);
    return cached;
  }
  const inflight = pending.get(ref.key);
  if (inflight) return inflight;
  const promise = (async (): Promise<Embedding> => {
    const separator = ref.url.includes("?") ? "&" : "?";
    const response = await fetch(`${ref.url}${separator}dtype=fp16`, { credentials: "same-origin" });
    if (!response.ok) {
      let status = "missing";
      try {
        const body = (await response.json()) as { status?: string; detail?: string };
        status = body.status ?? body.detail ?? status;
      } catch {
        // not JSON
      }
      throw new EmbeddingNotReady(response.status, status);
    }
    const shape = (response.headers.get("X-Embedding-Shape") ?? "")
      .split(",")
      .map((v) => Number.parseInt(v.trim(), 10));
    if (shape.length === 3) shape.unshift(1);
    const dtype = response.headers.get("X-Embedding-Dtype") ?? "float16";
    const inputSize = parseSize(response.headers.get("X-Input-Size"));
    const originalSize = parseSize(response.headers.get("X-Original-Size"));
    if (shape.length !== 4 || shape.some((v) => !Number.isFinite(v)) || !inputSize || !originalSize) {
      throw new Error("embedding response lacks its shape headers");
    }
    const buffer = await response.arrayBuffer();
    const [, c = 0, h = 0, w = 0] = shape;
    let data: Float32Array;
    if (dtype.startsWith("int8")) data = int8ToFloat32(buffer, c, h * w);
    else if (dtype.includes("32")) data = new Float32Array(buffer);
    else data = fp16ToFloat32(new Uint16Array(buffer));
    const embedding: Embedding = { tensor: new ort.Tensor("float32", data, shape), inputSize, originalSize };
    embeddings.set(ref.key, embedding);
    while (embeddings.size > EMBEDDING_CACHE) {
      const oldest = embeddings.keys().next().value;
      if (oldest === undefined) break;
      embeddings.delete(oldest);
    }
    return embedding;
  })();
  pending.set(ref.key, promise);
  try {
    return await promise;
  } finally {
    pending.delete(ref.key);
  }
}

async function setEmbedding(request: RequestFor<"setEmbedding">): Promise<void> {
  const started = performance.now();
  urls.set(request.embedding.key, request.embedding.url);
  try {
    const embedding = await loadEmbedding(request.embedding);
    const fetchMs = performance.now() - started;
    // The fast decoder's per-image work happens now, before the first click.
    await preparedFor(request.embedding.key, embedding.tensor);
    reply({
      action: "setEmbedding",
      id: request.id,
      inputSize: embedding.inputSize,
      originalSize: embedding.originalSize,
      fetchMs,
      prepareMs: performance.now() - started - fetchMs,
    });
  } catch (error) {
    if (error instanceof EmbeddingNotReady) {
      reply({
        action: "setEmbedding",
        id: request.id,
        error: error.message,
        status: error.status,
        embeddingStatus: error.embeddingStatus,
      });
    } else {
      reply({ action: "setEmbedding", id: request.id, error: errorText(error) });
    }
  }
}

async function prefetch(request: RequestFor<"prefetch">): Promise<void> {
  for (const ref of request.embeddings) {
    urls.set(ref.key, ref.url);
    try {
      await loadEmbedding(ref);
    } catch {
      // Not ready yet: it will be fetched when opened.
    }
  }
  reply({ action: "prefetch", id: request.id });
}

async function decode(request: RequestFor<"decode">): Promise<void> {
  const started = performance.now();
  if (!session || !model) throw new Error("decoder not initialised");
  const embedding = embeddings.get(request.embeddingKey);
  if (!embedding) throw new Error("embedding not loaded");
  const prompt = buildPromptTensors(request.prompt, embedding.originalSize, embedding.inputSize);
  const { target, inputs } = await decodeFeeds(
    request.embeddingKey,
    embedding,
    prompt.pointCoords,
    prompt.pointLabels,
    prompt.numPoints,
    request.maskInput,
  );
  const runStarted = performance.now();
  const output = await exclusive(() => target.run(inputs));
  const runMs = performance.now() - runStarted;
  const iouTensor = output["iou_predictions"];
  const lowTensor = output["low_res_masks"];
  if (!iouTensor || !lowTensor) throw new Error("decoder outputs lack iou_predictions/low_res_masks");
  const iou = Float32Array.from(iouTensor.data as Float32Array);
  const lowRes = Float32Array.from(lowTensor.data as Float32Array);
  const side = lowTensor.dims[3] ?? lowSide;
  const plane = side * side;
  const { indices, preselected } = candidateIndices(iou, request.prompt);
  // Small outputs: every candidate now (switching is instant); large ones: the preselected
  // one, the others on demand ("render").
  const renderAll = !request.previewOnly && request.outSize.width * request.outSize.height <= RENDER_ALL_PIXELS;
  const candidates: DecodeCandidate[] = indices.map((index) => ({
    index,
    // The IoU head is an unbounded regression: the score shown is clipped to [0, 1].
    iou: Math.min(1, Math.max(0, iou[index] ?? 0)),
    mask:
      renderAll || index === preselected
        ? lowResToMask(lowRes, index * plane, side, model?.imgSize ?? 0, embedding.inputSize, request.outSize)
        : null,
  }));
  lastDecodes.push({ id: request.id, logits: lowRes, side, embedding });
  while (lastDecodes.length > 4) lastDecodes.shift();
  const transfer: Transferable[] = [];
  for (const c of candidates) if (c.mask) transfer.push(c.mask.buffer as ArrayBuffer);
  const lowCopy = lowRes.slice();
  transfer.push(lowCopy.buffer as ArrayBuffer);
  reply(
    {
      action: "decode",
      id: request.id,
      candidates,
      preselected,
      outSize: request.outSize,
      lowRes: lowCopy,
      lowSide: side,
      decodeMs: performance.now() - started,
      runMs,
    },
    transfer,
  );
}

function render(request: RequestFor<"render">): void {
  const last = lastDecodes.find((d) => d.id === request.decodeId);
  if (!last || !model) {
    reply({ action: "render", id: request.id, error: "decode result no longer available" });
    return;
  }
  const side = last.side;
  const mask = lowResToMask(
    last.logits,
    request.index * side * side,
    side,
    model.imgSize,
    last.embedding.inputSize,
    request.outSize,
  );
  reply({ action: "render", id: request.id, mask, outSize: request.outSize }, [mask.buffer as ArrayBuffer]);
}

// Decodes run strictly one after another; queued ones may be cancelled.
const queue: RequestFor<"decode">[] = [];
let running = false;

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        await decode(next);
      } catch (error) {
        reply({ action: "decode", id: next.id, error: errorText(error) });
      }
    }
  } finally {
    running = false;
  }
}

scope.addEventListener("message", (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  switch (request.action) {
    case "init":
      void init(request);
      break;
    case "setEmbedding":
      void setEmbedding(request);
      break;
    case "prefetch":
      void prefetch(request);
      break;
    case "decode":
      queue.push(request);
      void pump();
      break;
    case "render":
      render(request);
      break;
    case "cancel": {
      const ids = new Set(request.ids);
      for (let i = queue.length - 1; i >= 0; i--) {
        const queued = queue[i];
        if (queued && ids.has(queued.id)) {
          queue.splice(i, 1);
          reply({ action: "decode", id: queued.id, cancelled: true });
        }
      }
      reply({ action: "cancel", id: request.id });
      break;
    }
  }
});
