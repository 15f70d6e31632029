/** The embedding machine's ports bound to the REST client and the decoder worker. */
import { api } from "../api/client";
import { samEngine } from "../sam/engine";
import { baseModelKey } from "../ui/modelState";
import type { EmbeddingPorts } from "./core/embedding";

export function embeddingPorts(projectId: () => number): EmbeddingPorts {
  return {
    loadModel: (key) => samEngine().ensureModel(key),
    requestEmbedding: (id) => api.requestEmbedding(projectId(), id),
    embeddingOf: async (id) => (await api.image(projectId(), id)).embedding,
    setEmbedding: (ref) => samEngine().client.setEmbedding(ref),
    prefetchEmbedding: (ref) => { samEngine().client.prefetch([ref]).catch(() => undefined); },
    embeddingUrl: api.embeddingUrl,
    // A fine-tuned version ("sam_tiny-p3v2") is described by its registry model.
    modelNotice: async (key) => (await api.models()).results.find((m) => m.key === baseModelKey(key))?.notice ?? "",
    schedule: (run, ms) => {
      const timer = window.setTimeout(run, ms);
      return () => { window.clearTimeout(timer); };
    },
  };
}
