/** One decoder worker for the page; the model is loaded once per model key. */
import { api } from "../api/client";
import type { DecoderManifest, DecoderPending } from "../api/types";
import { config } from "../config";
import { DecoderClient } from "./decoderClient";
import type { LoadedModel } from "./protocol";
import { chooseVariant, modelInfo } from "./variants";

/** Wait states of a decoder manifest (the model being downloaded, its decoder exported):
 * the server answers 202 with the state until the manifest is ready. */
export type DecoderWait = (state: DecoderPending) => void;

async function manifestWhenReady(modelKey: string, onWait?: DecoderWait): Promise<DecoderManifest> {
  const deadline = performance.now() + 600_000;
  for (;;) {
    const answer = await api.decoder(modelKey);
    if ("variants" in answer) return answer;
    onWait?.(answer);
    if (performance.now() > deadline) throw new Error(answer.detail);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

export type { LoadedModel } from "./protocol";

/** Decoder threads: at most 4, leaving the page's own thread its share on small machines. */
function decoderThreads(): number {
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
}

export class SamEngine {
  readonly client = new DecoderClient();
  private current: { key: string; promise: Promise<LoadedModel> } | null = null;

  constructor() {
    // The WASM runtime starts while the page still asks the server for the project, the
    // image and the decoder manifest: it is most of the first session's cost.
    if (!config.webgpu) this.client.start(config.wasmPaths, decoderThreads()).catch(() => undefined);
  }

  ensureModel(modelKey: string, onWait?: DecoderWait): Promise<LoadedModel> {
    if (this.current?.key === modelKey) return this.current.promise;
    const promise = (async (): Promise<LoadedModel> => {
      const manifest = await manifestWhenReady(modelKey, onWait);
      const wanted = new URLSearchParams(location.search).get("variant");
      const variant = wanted && manifest.variants[wanted] ? wanted : chooseVariant(manifest);
      const info = modelInfo(manifest, variant);
      const result = await this.client.init(info, config.wasmPaths, config.webgpu, decoderThreads());
      if (!result.ok) throw new Error(result.error);
      return { info, backend: result.backend, threads: result.threads, loadMs: result.loadMs, sessionsMs: result.sessionsMs, firstSessionMs: result.firstSessionMs };
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
