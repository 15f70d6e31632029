/**
 * SAM's prompt encoder + mask decoder, run with onnxruntime-web off the UI thread: the state
 * of the decoder worker, one handler per action, `dispatch`, which routes each message to
 * its handler and shapes the reply, and `serve`, the message loop (all apart from
 * onnxruntime's WASM and the worker's global scope, which the worker entry injects, so that
 * tests run them in Node).
 *
 * One InferenceSession per model, created once (model bytes kept in Cache Storage so a
 * reload does not download them again) and warmed up with a dummy prompt. A fast variant
 * (samapp.ml.fast_decoder, samapp.ml.sam2_fast) brings two more: its prepare graph, run once
 * per embedding when it opens, and the single-graph decoder used for clicks that refine a mask. Embeddings are
 * fetched as fp16 (or int8), converted to float32 here, and kept in a small LRU so that
 * prefetched neighbours open instantly. Decodes run one at a time in arrival order; queued
 * ones can be cancelled (stale hover previews), and the reply carries low-res logits for
 * refinement plus thresholded masks at the requested size. SAM 2's decoder takes two more
 * inputs, the high-resolution maps that come with its (packed) embedding.
 */
import type * as ortWasm from "onnxruntime-web/wasm";
import { decoderFeeds } from "./feeds";
import { fetchEmbedding, fetchModel, type Embedding } from "./fetching";
import { lowResToMask, lowResToMaskDirect } from "./masks";
import { buildPromptTensors, candidateIndices, type Size } from "./prompts";
import { sessionOptimization } from "./variants";
import {
  DecoderError,
  type DecodeCandidate,
  type DecoderModelInfo,
  type EmbeddingRef,
  type RequestFor,
  type Results,
  type WorkerAction,
  type WorkerRequest,
  type WorkerResponse,
} from "./protocol";

export type Ort = typeof ortWasm;

export interface WorkerScope {
  crossOriginIsolated: boolean;
  navigator: { hardwareConcurrency: number; gpu?: { requestAdapter(): Promise<unknown> } };
}

type Tensors = Record<string, ortWasm.Tensor>;

// A one-node ONNX graph (Identity on float[1]; IR 7, opset 13), made with onnx.helper: creating
// a session of it starts the WASM runtime (fetch, compile, threads) before any model is known.
const RUNTIME_START_GRAPH = "CAcSADo7ChAKAXgSAXkiCElkZW50aXR5EgVzdGFydFoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0=";

/** Prepare-graph outputs per embedding key; ViT-B's are 10 MB, so only the latest few. */
const PREPARED_CACHE = 2;
const EMBEDDING_CACHE = 8;
const RENDER_ALL_PIXELS = 512 * 512;

interface LastDecode {
  id: number;
  logits: Float32Array;
  side: number;
  embedding: Embedding;
}

function lruGet<V>(cache: Map<string, V>, key: string): V | undefined {
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
  }
  return hit;
}

function lruTrim<V>(cache: Map<string, V>, limit: number): void {
  for (const key of cache.keys()) {
    if (cache.size <= limit) break;
    cache.delete(key);
  }
}

export interface Handled<A extends WorkerAction> {
  result: Results[A];
  /** Buffers moved to the UI thread with the reply. */
  transfer?: Transferable[];
}

export type Handlers = {
  [A in WorkerAction]: (request: RequestFor<A>) => Promise<Handled<A>> | Handled<A>;
};

export interface Outgoing {
  response: WorkerResponse;
  transfer: Transferable[];
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One request of the worker's message loop: it goes to the handler of its action, and the
 * reply is `{ok: true, ...result}` or `{ok: false, error}` with a `DecoderError`'s details. */
export async function dispatch(handlers: Handlers, request: WorkerRequest): Promise<Outgoing> {
  const { id, action } = request;
  try {
    const handler = handlers[action] as (r: WorkerRequest) => Promise<Handled<WorkerAction>> | Handled<WorkerAction>;
    const { result, transfer = [] } = await handler.call(handlers, request);
    return { response: { ...result, id, action, ok: true } as WorkerResponse, transfer };
  } catch (error) {
    const details = error instanceof DecoderError ? error.details : {};
    return { response: { id, action, ok: false, error: errorText(error), ...details }, transfer: [] };
  }
}

/** What the worker's global scope offers the message loop. */
export interface WorkerPort {
  postMessage(message: WorkerResponse, transfer: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent<WorkerRequest>) => void): void;
}

/** The worker's message loop: each request is dispatched, and its reply posted with the
 * buffers it moves. */
export function serve(port: WorkerPort, handlers: Handlers): void {
  port.addEventListener("message", (event) => {
    void dispatch(handlers, event.data).then(({ response, transfer }) => { port.postMessage(response, transfer); });
  });
}

export class DecoderContext implements Handlers {
  private session: ortWasm.InferenceSession | null = null;
  private prepareSession: ortWasm.InferenceSession | null = null;
  // The refine graph is built after the first decode (or at the first refine), not in init:
  // the first click should not wait for a session it does not use.
  private maskInputLoad: (() => Promise<ortWasm.InferenceSession | null>) | null = null;
  private maskInputSession: Promise<ortWasm.InferenceSession | null> | null = null;
  private model: DecoderModelInfo | null = null;
  private readonly prepared = new Map<string, Promise<Tensors>>();
  private lowSide = 0;
  private zeroMask = new Float32Array(0);
  private readonly embeddings = new Map<string, Embedding>();
  private readonly pending = new Map<string, Promise<Embedding>>();
  private readonly lastDecodes: LastDecode[] = [];
  // Runs of the sessions (decodes, prepares, warm-ups) go one at a time through this chain.
  private runChain: Promise<unknown> = Promise.resolve();
  // Decodes wait here for their turn; a queued one can be cancelled.
  private readonly queue: { id: number; start: () => void; cancel: () => void }[] = [];
  private running = false;
  private runtime: Promise<number> | null = null;

  constructor(
    private ort: Ort,
    private readonly scope: WorkerScope,
    private readonly loadWebgpu: () => Promise<Ort>,
  ) {}

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.runChain.then(run);
    this.runChain = result.catch(() => undefined);
    return result;
  }

  private feeds(target: ortWasm.InferenceSession, embedding: Embedding, extra: Tensors | null, prompt: ReturnType<typeof buildPromptTensors>, maskInput: Float32Array | null): Tensors {
    const ort = this.ort;
    return decoderFeeds(target.inputNames, (data, dims) => new ort.Tensor("float32", data, dims), {
      embedding: embedding.tensor,
      extra: { ...embedding.extra, ...extra },
      prompt,
      maskInput,
      zeroMask: this.zeroMask,
      lowSide: this.lowSide,
      originalSize: embedding.originalSize,
    });
  }

  private async createSession(file: { url: string; sha256: string }, providers: string[], level: "disabled" | "all"): Promise<ortWasm.InferenceSession> {
    const bytes = await fetchModel(file.url, file.sha256);
    return await this.ort.InferenceSession.create(new Uint8Array(bytes), {
      executionProviders: providers,
      graphOptimizationLevel: level,
    });
  }

  /** The prepare-graph outputs of an embedding (computed once, shared by concurrent callers),
   * or null when the decoder has no prepare graph. The graph takes the image embedding and,
   * for SAM 2, the embedding's extra maps, by name. */
  private preparedFor(key: string, embedding: Embedding): Promise<Tensors> | null {
    const graph = this.prepareSession;
    if (!graph) return null;
    const hit = lruGet(this.prepared, key);
    if (hit) return hit;
    const given: Tensors = { ...embedding.extra, image_embeddings: embedding.tensor };
    const inputs: Tensors = {};
    for (const name of graph.inputNames) {
      const tensor = given[name];
      if (!tensor) return Promise.reject(new Error(`prepare input ${name} is not supported`));
      inputs[name] = tensor;
    }
    const promise = this.exclusive(() => graph.run(inputs));
    this.prepared.set(key, promise);
    promise.catch(() => this.prepared.delete(key));
    lruTrim(this.prepared, PREPARED_CACHE);
    return promise;
  }

  /** The session and inputs of one decode: a fast decoder's click graph, or, for a click that
   * refines a mask, its mask-input decoder. */
  private async decodeFeeds(key: string, embedding: Embedding, prompt: ReturnType<typeof buildPromptTensors>, maskInput: Float32Array | null): Promise<{ target: ortWasm.InferenceSession; inputs: Tensors }> {
    const main = this.session;
    if (!main) throw new Error("decoder not initialised");
    const refine = maskInput ? await this.maskInputGraph() : null;
    const target = refine ?? main;
    const ready = target === main ? await this.preparedFor(key, embedding) : null;
    return { target, inputs: this.feeds(target, embedding, ready, prompt, maskInput) };
  }

  /** Start the WASM runtime once (later calls share the first); resolves to the ms it took.
   * The settings of the first call stay: onnxruntime reads them when its runtime starts. */
  private startRuntime(wasmPaths: string, threads: number): Promise<number> {
    this.runtime ??= (async () => {
      const started = performance.now();
      this.configure(wasmPaths, threads);
      const graph = Uint8Array.from(atob(RUNTIME_START_GRAPH), (c) => c.charCodeAt(0));
      await this.ort.InferenceSession.create(graph, { executionProviders: ["wasm"] });
      return performance.now() - started;
    })();
    return this.runtime;
  }

  private configure(wasmPaths: string, threads: number): void {
    const env = this.ort.env;
    env.wasm.wasmPaths = wasmPaths;
    env.wasm.numThreads = this.scope.crossOriginIsolated ? threads : 1;
    env.wasm.simd = true;
    env.logLevel = "error";
  }

  async start(request: RequestFor<"start">): Promise<Handled<"start">> {
    return { result: { runtimeMs: await this.startRuntime(request.wasmPaths, request.threads) } };
  }

  async init(request: RequestFor<"init">): Promise<Handled<"init">> {
    const started = performance.now();
    let backend: "webgpu" | "wasm" = "wasm";
    if (request.webgpu && this.scope.navigator.gpu) {
      try {
        if (await this.scope.navigator.gpu.requestAdapter()) {
          this.ort = await this.loadWebgpu();
          backend = "webgpu";
        }
      } catch {
        backend = "wasm";
      }
    }
    if (backend === "wasm") await this.startRuntime(request.wasmPaths, request.threads);
    else this.configure(request.wasmPaths, request.threads);
    const providers = backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
    const info = request.model;
    const webgpu = backend === "webgpu";
    const level = sessionOptimization(info, webgpu);
    this.session = await this.createSession(info, providers, level);
    const firstSessionMs = performance.now() - started;
    this.prepareSession = info.prepare ? await this.createSession(info.prepare, providers, level) : null;
    const sessionsMs = performance.now() - started;
    this.prepared.clear();
    this.model = info;
    this.lowSide = 4 * (info.embeddingShape[2] ?? 16);
    this.zeroMask = new Float32Array(this.lowSide * this.lowSide);
    const refineModel = info.maskInputModel;
    this.maskInputSession = null;
    this.maskInputLoad = refineModel
      ? async () => {
          const refine = await this.createSession(refineModel, providers, sessionOptimization(refineModel, webgpu));
          // Warm-up: the first run allocates and compiles kernels.
          const { dummy, prompt } = this.warmUpInputs(info);
          await this.exclusive(() => refine.run(this.feeds(refine, dummy, null, prompt, this.zeroMask)));
          return refine;
        }
      : null;
    // Warm-up of the click graphs: the first run allocates and compiles kernels.
    const { dummy, prompt } = this.warmUpInputs(info);
    const { target, inputs } = await this.decodeFeeds("", dummy, prompt, null);
    await this.exclusive(() => target.run(inputs));
    this.prepared.clear();
    const result = {
      backend,
      threads: this.ort.env.wasm.numThreads ?? 1,
      crossOriginIsolated: this.scope.crossOriginIsolated,
      loadMs: performance.now() - started,
      sessionsMs,
      firstSessionMs,
    };
    return { result };
  }

  /** The refine (mask-input) graph of the current model, built on first use; null when the
   * model has none. A failed build is retried at the next use. */
  private maskInputGraph(): Promise<ortWasm.InferenceSession | null> {
    const load = this.maskInputLoad;
    if (!load) return Promise.resolve(null);
    if (!this.maskInputSession) {
      const pending = load();
      this.maskInputSession = pending;
      pending.catch(() => {
        if (this.maskInputSession === pending) this.maskInputSession = null;
      });
    }
    return this.maskInputSession;
  }

  /** A zero embedding and a one-point prompt of the model's shapes, for warm-up runs. */
  private warmUpInputs(info: DecoderModelInfo): { dummy: Embedding; prompt: ReturnType<typeof buildPromptTensors> } {
    const count = info.embeddingShape.reduce((a, b) => a * b, 1);
    const side = { height: info.imgSize, width: info.imgSize };
    const extra: Tensors = {};
    for (const [name, dims] of Object.entries(info.extraInputs ?? {})) {
      extra[name] = new this.ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    const dummy: Embedding = {
      tensor: new this.ort.Tensor("float32", new Float32Array(count), info.embeddingShape),
      inputSize: side,
      originalSize: side,
      extra,
    };
    const prompt = buildPromptTensors({ points: [{ x: 1, y: 1, label: 1 }], box: null }, side, side, info.family !== "sam2");
    return { dummy, prompt };
  }

  private async loadEmbedding(ref: EmbeddingRef): Promise<Embedding> {
    const cached = lruGet(this.embeddings, ref.key);
    if (cached) return cached;
    const inflight = this.pending.get(ref.key);
    if (inflight) return inflight;
    const promise = fetchEmbedding(this.ort, ref.url);
    this.pending.set(ref.key, promise);
    try {
      const embedding = await promise;
      this.embeddings.set(ref.key, embedding);
      lruTrim(this.embeddings, EMBEDDING_CACHE);
      return embedding;
    } finally {
      this.pending.delete(ref.key);
    }
  }

  async setEmbedding(request: RequestFor<"setEmbedding">): Promise<Handled<"setEmbedding">> {
    const started = performance.now();
    const embedding = await this.loadEmbedding(request.embedding);
    const fetchMs = performance.now() - started;
    // The fast decoder's per-image work happens now, before the first click.
    await this.preparedFor(request.embedding.key, embedding);
    const { inputSize, originalSize } = embedding;
    return { result: { inputSize, originalSize, fetchMs, prepareMs: performance.now() - started - fetchMs } };
  }

  async prefetch(request: RequestFor<"prefetch">): Promise<Handled<"prefetch">> {
    for (const ref of request.embeddings) {
      try {
        await this.loadEmbedding(ref);
      } catch {
        // Not ready yet: it will be fetched when opened.
      }
    }
    return { result: {} };
  }

  /** Decodes run strictly one after another, in arrival order. */
  async decode(request: RequestFor<"decode">): Promise<Handled<"decode">> {
    await new Promise<void>((start, reject) => {
      this.queue.push({ id: request.id, start, cancel: () => { reject(new DecoderError("cancelled", { cancelled: true })); } });
      this.pump();
    });
    try {
      return await this.runDecode(request);
    } finally {
      this.running = false;
      this.pump();
    }
  }

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    if (!next) return;
    this.running = true;
    next.start();
  }

  private async runDecode(request: RequestFor<"decode">): Promise<Handled<"decode">> {
    const started = performance.now();
    const model = this.model;
    if (!this.session || !model) throw new Error("decoder not initialised");
    const embedding = this.embeddings.get(request.embeddingKey);
    if (!embedding) throw new Error("embedding not loaded");
    const prompt = buildPromptTensors(request.prompt, embedding.originalSize, embedding.inputSize, model.family !== "sam2");
    const { target, inputs } = await this.decodeFeeds(request.embeddingKey, embedding, prompt, request.maskInput);
    const runStarted = performance.now();
    const output = await this.exclusive(() => target.run(inputs));
    const runMs = performance.now() - runStarted;
    // The first answer is out: now build the refine graph, before the user asks for it.
    void this.maskInputGraph().catch(() => undefined);
    const iouTensor = output.iou_predictions;
    const lowTensor = output.low_res_masks;
    if (!iouTensor || !lowTensor) throw new Error("decoder outputs lack iou_predictions/low_res_masks");
    const iou = Float32Array.from(iouTensor.data as Float32Array);
    const lowRes = Float32Array.from(lowTensor.data as Float32Array);
    const side = lowTensor.dims[3] ?? this.lowSide;
    const plane = side * side;
    const { indices, preselected } = candidateIndices(iou, request.prompt);
    // Small outputs: every candidate now (switching is instant); large ones: the preselected
    // one, the others on demand ("render").
    const { outSize } = request;
    const renderAll = outSize.width * outSize.height <= RENDER_ALL_PIXELS;
    const candidates: DecodeCandidate[] = indices.map((index) => ({
      index,
      // The IoU head is an unbounded regression: the score shown is clipped to [0, 1].
      iou: Math.min(1, Math.max(0, iou[index] ?? 0)),
      mask:
        renderAll || index === preselected
          ? this.toMask(lowRes, index * plane, side, embedding, outSize)
          : null,
    }));
    this.lastDecodes.push({ id: request.id, logits: lowRes, side, embedding });
    while (this.lastDecodes.length > 4) this.lastDecodes.shift();
    const lowCopy = lowRes.slice();
    const transfer: Transferable[] = [lowCopy.buffer];
    for (const c of candidates) if (c.mask) transfer.push(c.mask.buffer as ArrayBuffer);
    const decodeMs = performance.now() - started;
    return { result: { candidates, preselected, outSize, lowRes: lowCopy, lowSide: side, decodeMs, runMs }, transfer };
  }

  /** One low-res plane thresholded at the output size, upscaled as the model's predictor does. */
  private toMask(logits: Float32Array, offset: number, side: number, embedding: Embedding, outSize: Size): Uint8Array {
    const model = this.model;
    if (!model) throw new Error("decoder not initialised");
    if (model.family === "sam2") return lowResToMaskDirect(logits, offset, side, outSize);
    return lowResToMask(logits, offset, side, model.imgSize, embedding.inputSize, outSize);
  }

  render(request: RequestFor<"render">): Handled<"render"> {
    const last = this.lastDecodes.find((d) => d.id === request.decodeId);
    if (!last || !this.model) throw new Error("decode result no longer available");
    const { side } = last;
    const offset = request.index * side * side;
    const mask = this.toMask(last.logits, offset, side, last.embedding, request.outSize);
    return { result: { mask, outSize: request.outSize }, transfer: [mask.buffer as ArrayBuffer] };
  }

  cancel(request: RequestFor<"cancel">): Handled<"cancel"> {
    const ids = new Set(request.ids);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const queued = this.queue[i];
      if (queued && ids.has(queued.id)) {
        this.queue.splice(i, 1);
        queued.cancel();
      }
    }
    return { result: {} };
  }
}
