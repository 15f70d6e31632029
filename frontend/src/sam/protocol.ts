/** Messages between the UI thread and `decoder.worker.ts` (a discriminated union on `action`).
 * Every request carries an `id`; the reply to it has the same `id` and `action`, and is
 * `{ok: true, ...result}` or `{ok: false, error}`. */
import type { Prompt, Size } from "./prompts";

export interface DecoderModelInfo {
  modelKey: string;
  variant: string;
  url: string;
  sha256: string;
  imgSize: number;
  /** (1, C, H, W) of the image embeddings this decoder takes. */
  embeddingShape: number[];
  /** Names of the decoder's inputs, as in the manifest (SAM's official interface or lowres). */
  inputs: string[];
  outputs: string[];
  /** Per-image graph of a fast variant: its outputs are inputs of this decoder. */
  prepare?: { url: string; sha256: string };
  /** The decoder for clicks that refine a mask, when this one takes no mask input. */
  maskInputModel?: DecoderModelInfo;
  /** Inputs fed from the embedding beside `image_embeddings` (SAM 2's high-resolution maps),
   * name -> (1, C, h, w). */
  extraInputs?: Record<string, number[]>;
  /** "sam2": the graph appends the padding point itself (prompts are sent without it), and
   * low-res masks are upscaled to the image in one step, as SAM2Transforms.postprocess_masks. */
  family?: "sam" | "sam2";
  /** The graphs were optimised when exported: WASM sessions are created without optimising. */
  optimizedOffline?: boolean;
}

export interface EmbeddingRef {
  key: string; // `${modelKey}/${sha256}`
  url: string;
}

export type WorkerRequest =
  /** Start the WASM runtime before any model is known (the page sends it as it opens). */
  | { action: "start"; id: number; wasmPaths: string; threads: number }
  | { action: "init"; id: number; model: DecoderModelInfo; wasmPaths: string; webgpu: boolean; threads: number }
  | { action: "setEmbedding"; id: number; embedding: EmbeddingRef }
  | { action: "prefetch"; id: number; embeddings: EmbeddingRef[] }
  | {
      action: "decode";
      id: number;
      embeddingKey: string;
      prompt: Prompt;
      /** Previous low-res logits (1, 1, 4H, 4W) to refine, or null. */
      maskInput: Float32Array | null;
      /** Output mask size (the original size, or smaller for previews). */
      outSize: Size;
    }
  | { action: "render"; id: number; decodeId: number; index: number; outSize: Size }
  | { action: "cancel"; id: number; ids: number[] };

export interface DecodeCandidate {
  index: number;
  iou: number;
  /** Row-major 0/1 mask of outSize, or null until rendered ("render"). */
  mask: Uint8Array | null;
}

/** A reply that carries nothing but its success. */
type Empty = object;

/** What each action answers when it succeeds. */
export interface Results {
  /** `sessionsMs`: graphs fetched and their sessions created, of which `firstSessionMs` the
   * first (with what is left of the WASM runtime's start); the rest of `loadMs` is the
   * warm-up runs. */
  start: { runtimeMs: number };
  init: { backend: "webgpu" | "wasm"; threads: number; crossOriginIsolated: boolean; loadMs: number; sessionsMs: number; firstSessionMs: number };
  setEmbedding: {
    inputSize: Size;
    originalSize: Size;
    fetchMs: number;
    /** Of which the fast decoder's per-image graph. */
    prepareMs: number;
  };
  prefetch: Empty;
  decode: {
    candidates: DecodeCandidate[];
    preselected: number;
    outSize: Size;
    /** Low-res logits of every output mask (1, M, L, L), for refinement. */
    lowRes: Float32Array;
    lowSide: number;
    decodeMs: number;
    /** Of which session.run. */
    runMs: number;
  };
  render: { mask: Uint8Array; outSize: Size };
  cancel: Empty;
}

export type WorkerAction = WorkerRequest["action"];
export type RequestFor<A extends WorkerAction> = Extract<WorkerRequest, { action: A }>;

export type Success<A extends WorkerAction> = { id: number; action: A; ok: true } & Results[A];

export interface Failure {
  id: number;
  action: WorkerAction;
  ok: false;
  error: string;
  /** A queued decode dropped by a newer hover preview. */
  cancelled?: true;
  /** HTTP status of an embedding that is not ready (409) or missing. */
  status?: number;
  embeddingStatus?: string;
}

/** An error that the worker's reply describes beyond its message. */
export class DecoderError extends Error {
  constructor(
    message: string,
    readonly details: Pick<Failure, "cancelled" | "status" | "embeddingStatus"> = {},
  ) {
    super(message);
  }
}

/** The reply to one request: its id and action, then the result or the error. */
export type ResponseFor<A extends WorkerAction> = Success<A> | Failure;
export type WorkerResponse = { [A in WorkerAction]: Success<A> }[WorkerAction] | Failure;

/** A decoder loaded in the worker, as the page sees it. */
export interface LoadedModel {
  info: DecoderModelInfo;
  backend: string;
  threads: number;
  loadMs: number;
  sessionsMs: number;
  firstSessionMs: number;
}
