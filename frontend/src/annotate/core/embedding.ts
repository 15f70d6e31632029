/** The decoder model and the open image's embedding, as a state machine:
 *
 *   idle → loading (model, then embedding) → ready
 *                  ↘ pending (the server is computing it: wait for `embedding.ready`, poll)
 *                  ↘ failed (Retry asks the server again)
 *
 * The server is asked for the embedding's state first (a POST that also moves this image to
 * the front of its queue), and the embedding is downloaded only once ready, so a pending one
 * never shows up as a failed request. Everything it does goes through `EmbeddingPorts`. */
import type { ServerEvent } from "../../api/events.gen";
import type { EmbeddingInfo, ImageItem } from "../../api/types";
import type { EmbeddingRef, LoadedModel, ResponseFor } from "../../sam/protocol";

export type EmbeddingState = "idle" | "loading" | "pending" | "failed" | "ready";

export interface EmbeddingPorts {
  loadModel(modelKey: string): Promise<LoadedModel>;
  /** POST: the embedding's state, queued first on the server when not ready. */
  requestEmbedding(imageId: number): Promise<EmbeddingInfo>;
  /** GET: the image's embedding state, without queueing it again. */
  embeddingOf(imageId: number): Promise<EmbeddingInfo | null>;
  setEmbedding(ref: EmbeddingRef): Promise<ResponseFor<"setEmbedding">>;
  embeddingUrl(modelKey: string, sha256: string): string;
  /** Run `run` after `ms`; returns the cancel function. */
  schedule(run: () => void, ms: number): () => void;
}

export const POLL_MS = 2500;
export const RETRY_MS = 4000;
const FAILED = "The image embedding could not be computed.";

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class EmbeddingMachine {
  state: EmbeddingState = "idle";
  error = "";
  model: LoadedModel | null = null;
  modelError = "";
  /** The embedding open in the worker (its URL). */
  key = "";
  private image: ImageItem | null = null;
  private modelKey = "";
  private cancelPoll: () => void = () => undefined;

  constructor(
    private readonly ports: EmbeddingPorts,
    private readonly changed: () => void,
  ) {}

  get ready(): boolean {
    return this.state === "ready" && this.model !== null;
  }

  private set(state: EmbeddingState, error = this.error): void {
    this.state = state;
    this.error = error;
    this.changed();
  }

  /** Open `image` with the project's model: load the model, then the embedding. */
  async open(image: ImageItem, modelKey: string): Promise<void> {
    this.image = image;
    this.cancelPoll();
    if (modelKey !== this.modelKey) this.model = null;
    this.modelKey = modelKey;
    this.set("loading", "");
    try {
      this.model = await this.ports.loadModel(modelKey);
      this.modelError = "";
    } catch (error) {
      this.modelError = errorText(error);
      this.set("idle");
      return;
    }
    if (this.image === image) await this.load(false);
  }

  /** Another model was activated for the project. */
  switchModel(modelKey: string): Promise<void> | null {
    if (!this.image || modelKey === this.model?.info.modelKey) return null;
    return this.open(this.image, modelKey);
  }

  ref(image: ImageItem, info: EmbeddingInfo | null = null): EmbeddingRef {
    const modelKey = this.model?.info.modelKey ?? this.modelKey;
    const url = info?.url ?? image.embedding.url ?? this.ports.embeddingUrl(modelKey, image.sha256);
    return { key: url, url };
  }

  /** Ask again after a failure. */
  retry(): Promise<void> {
    this.set("pending");
    return this.load(false);
  }

  private poll(ms: number): void {
    this.cancelPoll();
    this.cancelPoll = this.ports.schedule(() => void this.load(true), ms);
  }

  /** `requested`: the server already queued it; only read its state. */
  private async load(requested: boolean): Promise<void> {
    const image = this.image;
    if (!image || !this.model) return;
    this.cancelPoll();
    if (this.state !== "pending") this.set("loading");
    let info: EmbeddingInfo;
    try {
      info = requested
        ? ((await this.ports.embeddingOf(image.id)) ?? (await this.ports.requestEmbedding(image.id)))
        : await this.ports.requestEmbedding(image.id);
    } catch (error) {
      if (this.image !== image) return;
      this.set("pending", errorText(error));
      this.poll(RETRY_MS);
      return;
    }
    if (this.image !== image) return;
    const status = info.status.toLowerCase();
    if (status === "ready") {
      const ref = this.ref(image, info);
      const result = await this.ports.setEmbedding(ref).catch((error: unknown) => ({ ok: false as const, error: errorText(error) }));
      if (this.image !== image) return;
      if (result.ok) {
        this.key = ref.key;
        this.set("ready", "");
      } else {
        this.set("failed", result.error);
      }
    } else if (status === "failed" || status === "error") {
      this.set("failed", info.error || FAILED);
    } else {
      this.set("pending");
      this.poll(POLL_MS);
    }
  }

  /** React to the server's embedding events; true when the event was about this image. */
  apply(event: ServerEvent): boolean {
    const image = this.image;
    if (!image) return false;
    if (event.event === "embedding.ready" && event.payload.sha256 === image.sha256) {
      if (this.state !== "ready") void this.load(true);
      return true;
    }
    if (event.event === "embedding.failed" && event.payload.sha256 === image.sha256) {
      this.cancelPoll();
      this.set("failed", event.payload.error || FAILED);
      return true;
    }
    return false;
  }

  close(): void {
    this.cancelPoll();
    this.image = null;
  }
}
