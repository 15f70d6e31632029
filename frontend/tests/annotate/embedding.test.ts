import { describe, expect, it } from "vitest";
import type { RegistryModelPayload, ServerEvent } from "../../src/api/events.gen";
import type { EmbeddingInfo, ImageItem } from "../../src/api/types";
import { EmbeddingMachine, POLL_MS, RETRY_MS, type EmbeddingPorts } from "../../src/annotate/core/embedding";
import type { LoadedModel, ResponseFor } from "../../src/sam/protocol";

const MODEL: LoadedModel = {
  info: { modelKey: "sam_tiny", variant: "fast_multi", url: "", sha256: "", imgSize: 256, embeddingShape: [1, 8, 16, 16], inputs: [], outputs: [] },
  backend: "wasm",
  threads: 2,
  loadMs: 1,
  sessionsMs: 1,
  firstSessionMs: 1,
};

const REGISTRY: RegistryModelPayload = {
  key: "", title: "", state: "downloading", bytes_done: 0, bytes_total: null, percent: null, error: "", downloadable: true,
  size_bytes: null, runs_on: "CPU", family: "sam", licence: "Apache-2.0", source: "", automatic_defaults: {}, notice: "",
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
  prefetched: string[] = [];
  modelError: Error | null = null;
  openReply: ResponseFor<"setEmbedding"> = { id: 1, action: "setEmbedding", ok: true, inputSize: { width: 256, height: 192 }, originalSize: { width: 4, height: 3 }, fetchMs: 1, prepareMs: 0 };
  requests = 0;

  notices: Record<string, string> = {};
  noticeAsked: string[] = [];
  /** Model loads held back until `release(key)` (none: they resolve at once). */
  held = new Map<string, () => void>();
  hold = false;

  loadModel(key: string): Promise<LoadedModel> {
    if (this.modelError) return Promise.reject(this.modelError);
    const model = { ...MODEL, info: { ...MODEL.info, modelKey: key } };
    if (!this.hold) return Promise.resolve(model);
    return new Promise((resolve) => this.held.set(key, () => resolve(model)));
  }
  release(key: string): Promise<void> {
    this.held.get(key)?.();
    return new Promise((resolve) => setTimeout(resolve, 0));
  }
  modelNotice(key: string): Promise<string> {
    this.noticeAsked.push(key);
    return Promise.resolve(this.notices[key] ?? "");
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
  prefetchEmbedding(ref: { key: string }): void {
    this.prefetched.push(ref.key);
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

  it("prefetches a ready embedding while the model loads, and only a ready one", async () => {
    const ports = new Ports();
    ports.hold = true;
    ports.requested.push(info("ready", { url: "/e/1/" }));
    const machine = new EmbeddingMachine(ports, () => undefined);
    const opening = machine.open(image(), "sam_tiny");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect([ports.prefetched, ports.opened]).toEqual([["/e/1/"], []]);
    await ports.release("sam_tiny");
    await opening;
    expect(ports.opened).toEqual(["/e/1/"]);
    ports.hold = false;
    ports.requested.push(info("pending"));
    await machine.open(image(2), "sam_tiny");
    expect(ports.prefetched).toEqual(["/e/1/"]);
  });

  it("asks for the embedding while the decoder loads, and opens it once both are there", async () => {
    const ports = new Ports();
    ports.hold = true;
    ports.requested.push(info("ready", { url: "/e/1/" }));
    const machine = new EmbeddingMachine(ports, () => undefined);
    const opening = machine.open(image(), "sam_tiny");
    expect([ports.requests, ports.opened, machine.state]).toEqual([1, [], "loading"]);
    await ports.release("sam_tiny");
    await opening;
    expect([ports.requests, ports.opened, machine.state]).toEqual([1, ["/e/1/"], "ready"]);
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

  it("switches live to an activated model: its decoder, then this image's embedding under its key", async () => {
    const ports = new Ports();
    ports.requested.push(info("ready", { url: "/api/embeddings/sam_tiny/sha3/" }));
    const machine = new EmbeddingMachine(ports, () => undefined);
    await machine.open(image(), "sam_tiny");
    ports.hold = true;
    ports.requested.push(info("ready", { url: "/api/embeddings/mobile_sam/sha3/", model_key: "mobile_sam" }));
    const switching = machine.switchModel("mobile_sam");
    expect(switching).not.toBeNull();
    // While the new decoder loads, nothing decodes with the old embedding.
    expect([machine.switching, machine.model, machine.key, machine.ready]).toEqual(["mobile_sam", null, "", false]);
    await ports.release("mobile_sam");
    await switching;
    expect(machine.model?.info.modelKey).toBe("mobile_sam");
    expect([machine.state, machine.key, machine.switching]).toEqual(["ready", "/api/embeddings/mobile_sam/sha3/", null]);
    expect(ports.opened).toEqual(["/api/embeddings/sam_tiny/sha3/", "/api/embeddings/mobile_sam/sha3/"]);
    expect(ports.requests).toBe(2);
    expect(machine.switchModel("mobile_sam")).toBeNull();
  });

  it("drops a superseded model load: the newest switch wins", async () => {
    const ports = new Ports();
    ports.hold = true;
    const machine = new EmbeddingMachine(ports, () => undefined);
    const first = machine.open(image(), "sam_tiny");
    ports.requested.push(info("ready", { url: "/e/mobile/" }));
    const second = machine.switchModel("mobile_sam");
    await ports.release("sam_tiny");
    await first;
    expect([machine.model, machine.state]).toEqual([null, "loading"]);
    await ports.release("mobile_sam");
    await second;
    expect(machine.model?.info.modelKey).toBe("mobile_sam");
    expect([machine.state, machine.key, machine.switching]).toEqual(["ready", "/e/mobile/", null]);
    expect(ports.opened).toEqual(["/e/mobile/"]);
  });

  it("drops an embedding answer that arrives after a switch began", async () => {
    const ports = new Ports();
    let answer: (value: EmbeddingInfo) => void = () => undefined;
    ports.requestEmbedding = () => {
      ports.requests++;
      return new Promise((resolve) => (answer = resolve));
    };
    const machine = new EmbeddingMachine(ports, () => undefined);
    void machine.open(image(), "sam_tiny");
    await new Promise((resolve) => setTimeout(resolve, 0));
    const oldAnswer = answer;
    ports.hold = true;
    const switching = machine.switchModel("mobile_sam");
    oldAnswer(info("ready", { url: "/e/old/" }));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect([machine.state, machine.key]).toEqual(["loading", ""]);
    await ports.release("mobile_sam");
    answer(info("ready", { url: "/e/new/", model_key: "mobile_sam" }));
    await switching;
    expect(ports.opened).toEqual(["/e/new/"]);
    expect(machine.key).toBe("/e/new/");
  });

  it("follows a switch that waits for a download: progress, failure, or the switch itself", async () => {
    const ports = new Ports();
    ports.requested.push(info("ready"));
    let changes = 0;
    const machine = new EmbeddingMachine(ports, () => changes++);
    await machine.open(image(), "sam_tiny");
    machine.setPending("sam_vit_b");
    expect(machine.pending).toEqual({ key: "sam_vit_b", percent: null });
    const download = (state: RegistryModelPayload["state"], percent: number | null, error = ""): ServerEvent => ({
      event: "model.download",
      payload: { ...REGISTRY, key: "sam_vit_b", title: "SAM ViT-B (91M)", state, percent, error },
    });
    expect(machine.apply(download("downloading", 42.5))).toBe(true);
    expect(machine.pending).toEqual({ key: "sam_vit_b", percent: 42.5 });
    expect(machine.apply({ event: "model.download", payload: { ...REGISTRY, key: "mobile_sam" } })).toBe(false);
    const before = changes;
    expect(machine.apply(download("failed", null, "the download host cannot be reached"))).toBe(true);
    expect(changes).toBeGreaterThan(before);
    expect(machine.pending).toBeNull();
    expect(machine.pendingEnded).toBe("The download of SAM ViT-B (91M) failed (the download host cannot be reached): sam_tiny stays in use.");
    // The server's own word that the wait is over adds nothing once the failure was shown.
    const failed = "The downloaded file was corrupt";
    expect(machine.apply({ event: "model.pending", payload: { model_key: null, current_model_key: "sam_tiny", failure: failed } })).toBe(true);
    expect(machine.pendingEnded).toContain("the download host cannot be reached");
    machine.dismissPendingEnded();
    expect(machine.pendingEnded).toBe("");
    // The project's event may come first (another channel group): it carries the reason itself.
    machine.setPending("sam_vit_b");
    machine.apply({ event: "model.pending", payload: { model_key: null, current_model_key: "sam_tiny", failure: failed } });
    expect([machine.pending, machine.pendingEnded]).toEqual([null, `The download of sam_vit_b failed (${failed}): sam_tiny stays in use.`]);
    expect(machine.apply(download("failed", null, failed))).toBe(false);
    machine.dismissPendingEnded();
    // Queued again from another page, then replaced by a switch to the model in use.
    machine.apply({ event: "model.pending", payload: { model_key: "mobile_sam", current_model_key: "sam_tiny", failure: "" } });
    expect(machine.pending?.key).toBe("mobile_sam");
    machine.apply({ event: "model.pending", payload: { model_key: null, current_model_key: "sam_tiny", failure: "" } });
    expect([machine.pending, machine.pendingEnded]).toEqual([null, "The switch to mobile_sam was called off: sam_tiny stays in use."]);
    // A switch the download completed: model.activated ends the wait and switches.
    machine.setPending("mobile_sam");
    ports.requested.push(info("ready", { url: "/e/m/" }));
    await machine.switchModel("mobile_sam");
    expect([machine.pending, machine.model?.info.modelKey, machine.key]).toEqual([null, "mobile_sam", "/e/m/"]);
    // Still the model in use (a switch back while the download ran): only the wait ends.
    machine.setPending("sam_vit_b");
    expect(machine.switchModel("mobile_sam")).toBeNull();
    expect(machine.pending).toBeNull();
  });

  it("reads the server's notice about each model once, and drops one that comes too late", async () => {
    const ports = new Ports();
    ports.notices = { sam_tiny: "sam_tiny is the offline demo model…" };
    ports.requested.push(info("ready"), info("ready"), info("ready"));
    const machine = new EmbeddingMachine(ports, () => undefined);
    await machine.open(image(), "sam_tiny");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(machine.notice).toBe("sam_tiny is the offline demo model…");
    await machine.open(image(4), "sam_tiny");
    expect(ports.noticeAsked).toEqual(["sam_tiny"]);
    const answers = new Map<string, (notice: string) => void>();
    ports.modelNotice = (key) => {
      ports.noticeAsked.push(key);
      return new Promise((resolve) => answers.set(key, resolve));
    };
    await machine.switchModel("mobile_sam");
    expect(machine.notice).toBe("");
    await machine.switchModel("sam_tiny");
    answers.get("mobile_sam")?.("stale");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(machine.notice).toBe("");
    expect(ports.noticeAsked).toEqual(["sam_tiny", "mobile_sam", "sam_tiny"]);
  });
});
