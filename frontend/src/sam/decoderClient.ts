/** Promise API over the decoder worker: request ids, replies matched by id, stale hover
 * previews cancelled so that only the newest one runs. */
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

type Pending = { resolve: (response: WorkerResponse) => void };

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

export class DecoderClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private previewIds: number[] = [];

  constructor() {
    this.worker = new Worker(new URL("./decoder.worker.ts", import.meta.url), { type: "module" });
    this.worker.addEventListener("message", (event: MessageEvent<WorkerResponse>) => {
      const waiter = this.pending.get(event.data.id);
      if (waiter) {
        this.pending.delete(event.data.id);
        waiter.resolve(event.data);
      }
    });
  }

  private send<A extends WorkerAction>(
    request: WithoutId<RequestFor<A>>,
    transfer: Transferable[] = [],
  ): { id: number; reply: Promise<ResponseFor<A>> } {
    const id = this.nextId++;
    const reply = new Promise<ResponseFor<A>>((resolve) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResponse) => void });
    });
    this.worker.postMessage({ ...request, id } as WorkerRequest, transfer);
    return { id, reply };
  }

  init(model: DecoderModelInfo, wasmPaths: string, webgpu: boolean): Promise<ResponseFor<"init">> {
    const threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
    return this.send<"init">({ action: "init", model, wasmPaths, webgpu, threads }).reply;
  }

  setEmbedding(embedding: EmbeddingRef): Promise<ResponseFor<"setEmbedding">> {
    return this.send<"setEmbedding">({ action: "setEmbedding", embedding }).reply;
  }

  prefetch(embeddings: EmbeddingRef[]): Promise<ResponseFor<"prefetch">> {
    return this.send<"prefetch">({ action: "prefetch", embeddings }).reply;
  }

  /** A full decode (clicks, boxes): never cancelled by previews. */
  decode(
    embeddingKey: string,
    prompt: Prompt,
    maskInput: Float32Array | null,
    outSize: Size,
  ): { id: number; reply: Promise<ResponseFor<"decode">> } {
    this.cancelPreviews();
    return this.send<"decode">({
      action: "decode",
      embeddingKey,
      prompt,
      maskInput: maskInput ? maskInput.slice() : null,
      outSize,
      previewOnly: false,
    });
  }

  /** A hover preview: any older preview still queued is cancelled first. All candidates are
   * rendered, so that a click on the previewed point can reuse the result. */
  preview(embeddingKey: string, prompt: Prompt, outSize: Size): { id: number; reply: Promise<ResponseFor<"decode">> } {
    this.cancelPreviews();
    const sent = this.send<"decode">({
      action: "decode",
      embeddingKey,
      prompt,
      maskInput: null,
      outSize,
      previewOnly: false,
    });
    this.previewIds.push(sent.id);
    void sent.reply.then(() => {
      this.previewIds = this.previewIds.filter((id) => id !== sent.id);
    });
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
    this.send<"cancel">({ action: "cancel", ids });
  }

  render(decodeId: number, index: number, outSize: Size): Promise<ResponseFor<"render">> {
    return this.send<"render">({ action: "render", decodeId, index, outSize }).reply;
  }

  terminate(): void {
    this.worker.terminate();
  }
}
