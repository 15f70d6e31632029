/** The decoder model and the open image's embedding, as a state machine:
 *
 *   idle → loading (model, then embedding) → ready
 *                  ↘ pending (the server is computing it: wait for `embedding.ready`, poll)
 *                  ↘ failed (Retry asks the server again)
 *
 * The server is asked for the embedding's state first (a POST that also moves this image to
 * the front of its queue), and the embedding is downloaded only once ready, so a pending one
 * never shows up as a failed request. Everything it does goes through `EmbeddingPorts`.
 *
 * The project's model is followed live: `model.activated` switches (`switching` names the
 * model until its decoder and this image's embedding under its key are open; a newer open or
 * switch supersedes an older one still loading), `model.pending` names a model the project
 * switches to once its download completes (the current one keeps working meanwhile), and
 * `model.download` gives that download's progress or its failure. */
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
  /** Start downloading a ready embedding into the decoder while its model still loads. */
  prefetchEmbedding(ref: EmbeddingRef): void;
  embeddingUrl(modelKey: string, sha256: string): string;
  /** What the server says about a model to its users ("" for nothing): the offline demo
   * model says it only knows generated shapes, and where to get a real one. */
  modelNotice(modelKey: string): Promise<string>;
  /** Run `run` after `ms`; returns the cancel function. */
  schedule(run: () => void, ms: number): () => void;
}

export const POLL_MS = 2500;
export const RETRY_MS = 4000;
const FAILED = "The image embedding could not be computed.";

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A model switch that waits for the model's download. */
export interface PendingModel {
  key: string;
  percent: number | null;
}

export class EmbeddingMachine {
  state: EmbeddingState = "idle";
  error = "";
  model: LoadedModel | null = null;
  modelError = "";
  /** The embedding open in the worker (its URL). */
  key = "";
  /** The server's notice about the model in use (see `EmbeddingPorts.modelNotice`). */
  notice = "";
  /** The model a live switch is loading, until it is ready. */
  switching: string | null = null;
  pending: PendingModel | null = null;
  /** Why the last pending switch ended without switching ("" once read). */
  pendingEnded = "";
  private image: ImageItem | null = null;
  private modelKey = "";
  private noticeKey = "";
  /** Counts opens: the results of a superseded one are dropped. */
  private opens = 0;
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

  /** The model in use, or the one being switched to. */
  get modelKeyInUse(): string {
    return this.modelKey;
  }

  /** Open `image` with the project's model: load the model, then the embedding. */
  async open(image: ImageItem, modelKey: string): Promise<void> {
    const run = ++this.opens;
    this.image = image;
    this.cancelPoll();
    if (modelKey !== this.modelKey) {
      this.model = null;
      this.key = "";
    }
    this.modelKey = modelKey;
    this.readNotice(modelKey);
    this.set("loading", "");
    // Ask for the embedding while the decoder loads (the server queues it first when it is
    // not ready): the first click then waits for the slower of the two, not for both.
    const requested = this.ports.requestEmbedding(image.id);
    requested.then(
      (info) => {
        // Its download then overlaps the decoder's start instead of following it.
        if (run === this.opens && info.status.toLowerCase() === "ready") this.ports.prefetchEmbedding(this.ref(image, info));
      },
      () => undefined, // read by `load`, unless this open is superseded
    );
    try {
      const model = await this.ports.loadModel(modelKey);
      if (run !== this.opens) return;
      this.model = model;
      this.modelError = "";
    } catch (error) {
      if (run !== this.opens) return;
      this.modelError = errorText(error);
      this.set("idle");
      return;
    }
    if (this.image === image) await this.load(false, requested);
  }

  private readNotice(modelKey: string): void {
    if (modelKey === this.noticeKey) return;
    this.noticeKey = modelKey;
    this.notice = "";
    this.ports.modelNotice(modelKey).then(
      (notice) => {
        if (this.noticeKey !== modelKey) return;
        this.notice = notice;
        this.changed();
      },
      () => undefined, // a notice is a nicety: the workspace works without it
    );
  }

  /** Another model was activated for the project: switch to it live, keeping the image. Any
   * switch that waited for a download is over (the server drops it when one is applied). */
  switchModel(modelKey: string): Promise<void> | null {
    this.pending = null;
    if (!this.image || modelKey === this.modelKey) {
      this.changed();
      return null;
    }
    this.switching = modelKey;
    return this.open(this.image, modelKey).finally(() => {
      if (this.switching !== modelKey || this.modelKey !== modelKey) return;
      this.switching = null;
      this.changed();
    });
  }

  /** The project's switch that waits for a download (from the project, at load). */
  setPending(modelKey: string | null): void {
    if (modelKey === (this.pending?.key ?? null)) return;
    this.pending = modelKey ? { key: modelKey, percent: null } : null;
    this.changed();
  }

  dismissPendingEnded(): void {
    this.pendingEnded = "";
    this.changed();
  }

  private endPending(why: string): void {
    this.pending = null;
    this.pendingEnded = why;
    this.changed();
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

  /** `requested`: the server already queued it; only read its state. `asked`: the answer of
   * a request already sent. */
  private async load(requested: boolean, asked?: Promise<EmbeddingInfo>): Promise<void> {
    const image = this.image;
    if (!image || !this.model) return;
    const run = this.opens;
    const stale = (): boolean => this.image !== image || this.opens !== run;
    this.cancelPoll();
    if (this.state !== "pending") this.set("loading");
    let info: EmbeddingInfo;
    try {
      info = requested
        ? ((await this.ports.embeddingOf(image.id)) ?? (await this.ports.requestEmbedding(image.id)))
        : await (asked ?? this.ports.requestEmbedding(image.id));
    } catch (error) {
      if (stale()) return;
      this.set("pending", errorText(error));
      this.poll(RETRY_MS);
      return;
    }
    if (stale()) return;
    const status = info.status.toLowerCase();
    if (status === "ready") {
      const ref = this.ref(image, info);
      const result = await this.ports.setEmbedding(ref).catch((error: unknown) => ({ ok: false as const, error: errorText(error) }));
      if (stale()) return;
      if (result.ok) {
        this.key = ref.key;
        this.set("ready", "");
      } else {
        this.set("failed", result.error);
      }
    } else if (status === "failed") {
      this.set("failed", info.error || FAILED);
    } else {
      this.set("pending");
      this.poll(POLL_MS);
    }
  }

  /** React to the server's embedding events (true when the event was about this image) and
   * to the events about a switch waiting for a download (true when about this project's). */
  apply(event: ServerEvent): boolean {
    if (event.event === "model.pending") {
      const { model_key: key, current_model_key: current, failure } = event.payload;
      const waited = this.pending?.key;
      if (key) this.setPending(key);
      else if (waited && failure) this.endPending(`The download of ${waited} failed (${failure}): ${current} stays in use.`);
      else if (waited) this.endPending(`The switch to ${waited} was called off: ${current} stays in use.`);
      return true;
    }
    if (event.event === "model.download") {
      const m = event.payload;
      if (m.key !== this.pending?.key) return false;
      if (m.state === "failed") this.endPending(`The download of ${m.title} failed (${m.error}): ${this.modelKey} stays in use.`);
      else {
        this.pending = { key: m.key, percent: m.percent };
        this.changed();
      }
      return true;
    }
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
