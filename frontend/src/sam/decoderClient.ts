/** Promise API over the decoder worker: request ids, replies matched by id, stale hover
 * previews cancelled so that only the newest one runs. When the worker dies (`error`, or a
 * reply that cannot be read) every pending call is rejected, and so is every later one. */
import type { Prompt, Size } from "./prompts";
import type {
  DecoderModelInfo,
  EmbeddingRef,
  RequestFor,
  ResponseFor,
  WorkerAction,
  WorkerRequest,
  WorkerResponse,
} from "./protocol";

/** The part of `Worker` the client uses (a fake one in tests). */
export interface WorkerLike {
  postMessage(message: WorkerRequest, transfer: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent<WorkerResponse>) => void): void;
  addEventListener(type: "error" | "messageerror", listener: (event: Event) => void): void;
  terminate(): void;
}

interface Pending {
  resolve: (response: WorkerResponse) => void;
  reject: (error: Error) => void;
}

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

export interface Sent<A extends WorkerAction> {
  id: number;
  reply: Promise<ResponseFor<A>>;
}

export class DecoderWorkerError extends Error {}

function defaultWorker(): WorkerLike {
  return new Worker(new URL("./decoder.worker.ts", import.meta.url), { type: "module" });
}

export class DecoderClient {
  private readonly worker: WorkerLike;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private previewIds: number[] = [];
  private failure: DecoderWorkerError | null = null;

  constructor(createWorker: () => WorkerLike = defaultWorker) {
    this.worker = createWorker();
    this.worker.addEventListener("message", (event: MessageEvent<WorkerResponse>) => {
      const waiter = this.pending.get(event.data.id);
      if (waiter) {
        this.pending.delete(event.data.id);
        waiter.resolve(event.data);
      }
    });
    this.worker.addEventListener("error", (event: Event) => {
      const detail = (event as ErrorEvent).message;
      this.fail(`the decoder worker stopped${detail ? `: ${detail}` : ""}`);
    });
    this.worker.addEventListener("messageerror", () => { this.fail("a decoder reply could not be read"); });
  }

  /** Why the worker is unusable, or null while it runs. */
  get error(): string | null {
    return this.failure?.message ?? null;
  }

  private fail(message: string): void {
    this.failure ??= new DecoderWorkerError(message);
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiting) waiter.reject(this.failure);
  }

  private send<A extends WorkerAction>(request: WithoutId<RequestFor<A>>, transfer: Transferable[] = []): Sent<A> {
    const id = this.nextId++;
    const failure = this.failure;
    if (failure) return { id, reply: Promise.reject(failure) };
    const reply = new Promise<ResponseFor<A>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResponse) => void, reject });
    });
    this.worker.postMessage({ ...request, id }, transfer);
    return { id, reply };
  }

  start(wasmPaths: string, threads: number): Promise<ResponseFor<"start">> {
    return this.send<"start">({ action: "start", wasmPaths, threads }).reply;
  }

  init(model: DecoderModelInfo, wasmPaths: string, webgpu: boolean, threads: number): Promise<ResponseFor<"init">> {
    return this.send<"init">({ action: "init", model, wasmPaths, webgpu, threads }).reply;
  }

  setEmbedding(embedding: EmbeddingRef): Promise<ResponseFor<"setEmbedding">> {
    return this.send<"setEmbedding">({ action: "setEmbedding", embedding }).reply;
  }

  prefetch(embeddings: EmbeddingRef[]): Promise<ResponseFor<"prefetch">> {
    return this.send<"prefetch">({ action: "prefetch", embeddings }).reply;
  }

  /** A full decode (clicks, boxes): never cancelled by previews. */
  decode(embeddingKey: string, prompt: Prompt, maskInput: Float32Array | null, outSize: Size): Sent<"decode"> {
    this.cancelPreviews();
    const input = maskInput ? maskInput.slice() : null;
    return this.send<"decode">({ action: "decode", embeddingKey, prompt, maskInput: input, outSize });
  }

  /** A hover preview: any older preview still queued is cancelled first. All candidates are
   * rendered, so that a click on the previewed point can reuse the result. */
  preview(embeddingKey: string, prompt: Prompt, outSize: Size): Sent<"decode"> {
    this.cancelPreviews();
    const sent = this.send<"decode">({ action: "decode", embeddingKey, prompt, maskInput: null, outSize });
    this.previewIds.push(sent.id);
    const forget = (): void => {
      this.previewIds = this.previewIds.filter((id) => id !== sent.id);
    };
    sent.reply.then(forget, forget);
    return sent;
  }

  /** Keep a preview from being cancelled (a click adopted it). */
  adopt(id: number): void {
    this.previewIds = this.previewIds.filter((x) => x !== id);
  }

  cancelPreviews(): void {
    if (this.previewIds.length === 0) return;
    const ids = this.previewIds;
    this.previewIds = [];
    this.send<"cancel">({ action: "cancel", ids }).reply.catch(() => undefined);
  }

  render(decodeId: number, index: number, outSize: Size): Promise<ResponseFor<"render">> {
    return this.send<"render">({ action: "render", decodeId, index, outSize }).reply;
  }

  terminate(): void {
    this.worker.terminate();
    this.fail("the decoder worker was terminated");
  }
}
