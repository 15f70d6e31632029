/** One decoder worker for the page; the model is loaded once per model key. */
import { ApiError, api } from "../api/client";
import type { DecoderManifest } from "../api/types";
import { config } from "../config";
import { DecoderClient } from "./decoderClient";
import type { LoadedModel } from "./protocol";
import { chooseVariant, modelInfo } from "./variants";

/** The first request for a model's decoder starts its ONNX export on the server (503 with
 * Retry-After until it is done). */
async function manifestWithRetry(modelKey: string): Promise<DecoderManifest> {
  const deadline = performance.now() + 300_000;
  for (;;) {
    try {
      return await api.decoder(modelKey);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 503 || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

export type { LoadedModel } from "./protocol";

export class SamEngine {
  readonly client = new DecoderClient();
  private current: { key: string; promise: Promise<LoadedModel> } | null = null;

  ensureModel(modelKey: string): Promise<LoadedModel> {
    if (this.current?.key === modelKey) return this.current.promise;
    const promise = (async (): Promise<LoadedModel> => {
      const manifest = await manifestWithRetry(modelKey);
      const wanted = new URLSearchParams(location.search).get("variant");
      const variant = wanted && manifest.variants[wanted] ? wanted : chooseVariant(manifest);
      const info = modelInfo(manifest, variant);
      const threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
      const result = await this.client.init(info, config.wasmPaths, config.webgpu, threads);
      if (!result.ok) throw new Error(result.error);
      return { info, backend: result.backend, threads: result.threads, loadMs: result.loadMs };
    })();
    this.current = { key: modelKey, promise };
    promise.catch(() => {
      if (this.current?.promise === promise) this.current = null;
    });
    return promise;
  }
}

let engine: SamEngine | null = null;
export function samEngine(): SamEngine {
  engine ??= new SamEngine();
  return engine;
}
