import { describe, expect, it } from "vitest";
import { DecoderClient, DecoderWorkerError, type WorkerLike } from "../src/sam/decoderClient";
import { dispatch, serve, type Handlers, type WorkerPort } from "../src/sam/decoderContext";
import { DecoderError, type WorkerRequest, type WorkerResponse } from "../src/sam/protocol";

const EMBEDDING = { key: "k", url: "/e/" };
const SIZE = { width: 2, height: 2 };

function handlers(overrides: Partial<Handlers> = {}): Handlers {
  const fail = (): never => {
    throw new Error("unused");
  };
  return {
    start: fail, init: fail, setEmbedding: fail, prefetch: fail, decode: fail, render: fail, cancel: () => ({ result: {} }),
    ...overrides,
  } as Handlers;
}

describe("decoder worker dispatcher", () => {
  it("answers {ok: true, ...result} with the request's id and action, and its transfers", async () => {
    const mask = new Uint8Array(4);
    const h = handlers({ render: () => ({ result: { mask, outSize: SIZE }, transfer: [mask.buffer] }) });
    const out = await dispatch(h, { action: "render", id: 7, decodeId: 1, index: 0, outSize: SIZE });
    expect(out.response).toEqual({ id: 7, action: "render", ok: true, mask, outSize: SIZE });
    expect(out.transfer).toEqual([mask.buffer]);
  });

  it("answers {ok: false, error} when a handler throws, with the details it gives", async () => {
    const h = handlers({
      setEmbedding: async () => {
        throw new DecoderError("embedding not ready (pending)", { status: 409, embeddingStatus: "pending" });
      },
      prefetch: () => {
        throw "odd";
      },
    });
    const notReady = await dispatch(h, { action: "setEmbedding", id: 2, embedding: EMBEDDING });
    expect(notReady.response).toEqual({ id: 2, action: "setEmbedding", ok: false, error: "embedding not ready (pending)", status: 409, embeddingStatus: "pending" });
    const odd = await dispatch(h, { action: "prefetch", id: 3, embeddings: [] });
    expect(odd.response).toEqual({ id: 3, action: "prefetch", ok: false, error: "odd" });
  });
});

/** A worker whose replies and crashes the test makes. */
class FakeWorker implements WorkerLike {
  posted: WorkerRequest[] = [];
  terminated = false;
  private listeners: Record<string, ((event: never) => void)[]> = {};

  postMessage(message: WorkerRequest): void {
    this.posted.push(message);
  }
  addEventListener(type: string, listener: (event: never) => void): void {
    (this.listeners[type] ??= []).push(listener);
  }
  terminate(): void {
    this.terminated = true;
  }
  emit(type: "message" | "error" | "messageerror", event: unknown): void {
    for (const listener of this.listeners[type] ?? []) listener(event as never);
  }
  reply(response: WorkerResponse): void {
    this.emit("message", { data: response });
  }
}

function client(): { worker: FakeWorker; client: DecoderClient } {
  const worker = new FakeWorker();
  return { worker, client: new DecoderClient(() => worker) };
}

describe("decoder client", () => {
  it("talks to the worker's message loop: each reply reaches its call, with its buffers moved", async () => {
    const worker = new FakeWorker();
    const moved = new Map<number, Transferable[]>();
    const channel: { toWorker?: (event: MessageEvent<WorkerRequest>) => void } = {};
    const port: WorkerPort = {
      addEventListener: (_type, listener) => { channel.toWorker = listener; },
      postMessage: (message, transfer) => {
        moved.set(message.id, transfer);
        worker.reply(message);
      },
    };
    const mask = new Uint8Array(4);
    serve(port, handlers({ render: () => ({ result: { mask, outSize: SIZE }, transfer: [mask.buffer] }) }));
    const c = new DecoderClient(() => worker);
    const calls = Promise.all([c.render(1, 0, SIZE), c.setEmbedding(EMBEDDING)]);
    for (const request of worker.posted) channel.toWorker?.({ data: request } as MessageEvent<WorkerRequest>);
    const [rendered, failed] = await calls;
    expect(rendered).toEqual({ id: 1, action: "render", ok: true, mask, outSize: SIZE });
    expect(failed).toEqual({ id: 2, action: "setEmbedding", ok: false, error: "unused" });
    expect(moved).toEqual(new Map([[1, [mask.buffer]], [2, []]]));
  });

  it("matches replies to calls by id", async () => {
    const { worker, client: c } = client();
    const a = c.setEmbedding(EMBEDDING);
    const b = c.render(1, 0, SIZE);
    worker.reply({ id: 2, action: "render", ok: false, error: "gone" });
    worker.reply({ id: 99, action: "cancel", ok: true });
    worker.reply({ id: 1, action: "setEmbedding", ok: true, inputSize: SIZE, originalSize: SIZE, fetchMs: 1, prepareMs: 0 });
    expect(await b).toEqual({ id: 2, action: "render", ok: false, error: "gone" });
    expect((await a).ok).toBe(true);
    expect(worker.posted.map((m) => m.action)).toEqual(["setEmbedding", "render"]);
  });

  it("rejects every pending call, and every later one, when the worker dies", async () => {
    const { worker, client: c } = client();
    const pending = [c.init({ modelKey: "m", variant: "v", url: "", sha256: "", imgSize: 256, embeddingShape: [1, 1, 1, 1], inputs: [], outputs: [] }, "/ort/", false, 2), c.prefetch([EMBEDDING])];
    worker.emit("error", { message: "out of memory" });
    for (const call of pending) await expect(call).rejects.toThrow("the decoder worker stopped: out of memory");
    expect(c.error).toBe("the decoder worker stopped: out of memory");
    await expect(c.decode("k", { points: [], box: null }, null, SIZE).reply).rejects.toBeInstanceOf(DecoderWorkerError);
    expect(worker.posted.length).toBe(2);
  });

  it("rejects pending calls when a reply cannot be read or the worker is terminated", async () => {
    const { worker, client: c } = client();
    const call = c.render(1, 0, SIZE);
    worker.emit("messageerror", {});
    await expect(call).rejects.toThrow("could not be read");
    const other = client();
    const late = other.client.setEmbedding(EMBEDDING);
    other.client.terminate();
    expect(other.worker.terminated).toBe(true);
    await expect(late).rejects.toThrow("terminated");
  });

  it("cancels queued previews when a newer preview or a click comes, except an adopted one", async () => {
    const { worker, client: c } = client();
    const prompt = { points: [{ x: 1, y: 1, label: 1 as const }], box: null };
    const first = c.preview("k", prompt, SIZE);
    const second = c.preview("k", prompt, SIZE);
    const cancels = (): WorkerRequest[] => worker.posted.filter((m) => m.action === "cancel");
    expect(cancels()).toMatchObject([{ ids: [first.id] }]);
    const adopted = c.preview("k", prompt, SIZE);
    expect(cancels()).toMatchObject([{ ids: [first.id] }, { ids: [second.id] }]);
    c.adopt(adopted.id);
    const click = c.decode("k", prompt, new Float32Array([1, 2]), SIZE);
    expect(cancels().length).toBe(2);
    expect(worker.posted.at(-1)).toMatchObject({ action: "decode", id: click.id });
    // A preview answered is no longer cancelled.
    const last = c.preview("k", prompt, SIZE);
    worker.reply({ id: last.id, action: "decode", ok: false, error: "cancelled", cancelled: true });
    await last.reply;
    c.cancelPreviews();
    expect(cancels().length).toBe(2);
  });
});
