import { describe, expect, it } from "vitest";
import type { EmbeddingInfo, ImageItem } from "../../src/api/types";
import { EmbeddingMachine, POLL_MS, RETRY_MS, type EmbeddingPorts } from "../../src/annotate/core/embedding";
import type { LoadedModel, ResponseFor } from "../../src/sam/protocol";

const MODEL: LoadedModel = {
  info: { modelKey: "sam_tiny", variant: "fast_multi", url: "", sha256: "", imgSize: 256, embeddingShape: [1, 8, 16, 16], inputs: [], outputs: [] },
  backend: "wasm",
  threads: 2,
  loadMs: 1,
};

function image(id = 3, status = "missing"): ImageItem {
  return {
    id, original_name: "a.png", sha256: `sha${id}`, format: "png", width: 4, height: 3, status: "new", assignee: null,
    created_at: "", embedding: { status, url: null, error: "", model_key: "sam_tiny" },
  };
}

const info = (status: string, extra: Partial<EmbeddingInfo> = {}): EmbeddingInfo => ({ status, url: null, error: "", model_key: "sam_tiny", ...extra });

class Ports implements EmbeddingPorts {
  requested: EmbeddingInfo[] = [];
  read: (EmbeddingInfo | null)[] = [];
  timers: { run: () => void; ms: number; cancelled: boolean }[] = [];
  opened: string[] = [];
  modelError: Error | null = null;
  openReply: ResponseFor<"setEmbedding"> = { id: 1, action: "setEmbedding", ok: true, inputSize: { width: 256, height: 192 }, originalSize: { width: 4, height: 3 }, fetchMs: 1, prepareMs: 0 };
  requests = 0;

  loadModel(key: string): Promise<LoadedModel> {
    if (this.modelError) return Promise.reject(this.modelError);
    return Promise.resolve({ ...MODEL, info: { ...MODEL.info, modelKey: key } });
  }
  requestEmbedding(): Promise<EmbeddingInfo> {
    this.requests++;
    const next = this.requested.shift();
    return next ? Promise.resolve(next) : Promise.reject(new Error("network down"));
  }
  embeddingOf(): Promise<EmbeddingInfo | null> {
    return Promise.resolve(this.read.shift() ?? null);
  }
  setEmbedding(ref: { key: string }): Promise<ResponseFor<"setEmbedding">> {
    this.opened.push(ref.key);
    return Promise.resolve(this.openReply);
  }
  embeddingUrl(modelKey: string, sha256: string): string {
    return `/api/embeddings/${modelKey}/${sha256}/`;
  }
  schedule(run: () => void, ms: number): () => void {
    const timer = { run, ms, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  fire(): Promise<void> {
    const timer = this.timers.filter((t) => !t.cancelled).at(-1);
    timer?.run();
    return new Promise((resolve) => setTimeout(resolve, 0));
  }
}

describe("embedding state machine", () => {
  it("loads the model, then opens a ready embedding", async () => {
    const ports = new Ports();
    ports.requested.push(info("ready", { url: "/e/1/" }));
    let changes = 0;
    const machine = new EmbeddingMachine(ports, () => changes++);
    await machine.open(image(), "sam_tiny");
    expect(machine.state).toBe("ready");
    expect(machine.ready).toBe(true);
    expect(machine.key).toBe("/e/1/");
    expect(ports.opened).toEqual(["/e/1/"]);
    expect(changes).toBeGreaterThan(1);
  });

  it("waits while the server computes it, polls, and opens it on embedding.ready", async () => {
    const ports = new Ports();
    ports.requested.push(info("pending"));
    const machine = new EmbeddingMachine(ports, () => undefined);
    await machine.open(image(), "sam_tiny");
    expect(machine.state).toBe("pending");
    expect(ports.timers.at(-1)?.ms).toBe(POLL_MS);
    ports.read.push(info("running"));
    await ports.fire();
    expect(machine.state).toBe("pending");
    expect(machine.apply({ event: "embedding.ready", payload: { sha256: "other", model_key: "sam_tiny" } })).toBe(false);
    ports.read.push(info("ready"));
    expect(machine.apply({ event: "embedding.ready", payload: { sha256: "sha3", model_key: "sam_tiny" } })).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(machine.state).toBe("ready");
    expect(machine.key).toBe("/api/embeddings/sam_tiny/sha3/");
    expect(ports.requests).toBe(1);
  });

  it("fails on embedding.failed or a failed status, and retries on request", async () => {
    const ports = new Ports();
    ports.requested.push(info("pending"));
    const machine = new EmbeddingMachine(ports, () => undefined);
    await machine.open(image(), "sam_tiny");
    machine.apply({ event: "embedding.failed", payload: { sha256: "sha3", model_key: "sam_tiny", error: "out of memory" } });
    expect([machine.state, machine.error]).toEqual(["failed", "out of memory"]);
    expect(ports.timers.every((t) => t.cancelled)).toBe(true);
    ports.requested.push(info("failed", { error: "" }));
    await machine.retry();
    expect([machine.state, machine.error]).toEqual(["failed", "The image embedding could not be computed."]);
    ports.requested.push(info("ready"));
    ports.openReply = { id: 2, action: "setEmbedding", ok: false, error: "embedding not ready (missing)", status: 404 };
    await machine.retry();
    expect([machine.state, machine.error]).toEqual(["failed", "embedding not ready (missing)"]);
  });

  it("keeps asking while the server cannot be reached", async () => {
    const ports = new Ports();
    const machine = new EmbeddingMachine(ports, () => undefined);
    await machine.open(image(), "sam_tiny");
    expect([machine.state, machine.error]).toEqual(["pending", "network down"]);
    expect(ports.timers.at(-1)?.ms).toBe(RETRY_MS);
    machine.close();
    expect(ports.timers.at(-1)?.cancelled).toBe(true);
  });

  it("reports a model that cannot be loaded, and switches models", async () => {
    const ports = new Ports();
    ports.modelError = new Error("no decoder");
    const machine = new EmbeddingMachine(ports, () => undefined);
    expect(machine.switchModel("x")).toBeNull();
    await machine.open(image(), "sam_tiny");
    expect([machine.state, machine.modelError]).toEqual(["idle", "no decoder"]);
    ports.modelError = null;
    ports.requested.push(info("ready"), info("ready"));
    await machine.open(image(), "sam_tiny");
    expect(machine.model?.info.modelKey).toBe("sam_tiny");
    expect(machine.switchModel("sam_tiny")).toBeNull();
    await machine.switchModel("sam_tiny-p1-v1");
    expect(machine.model?.info.modelKey).toBe("sam_tiny-p1-v1");
    expect(machine.ref(image(5)).url).toBe("/api/embeddings/sam_tiny-p1-v1/sha5/");
  });
});
