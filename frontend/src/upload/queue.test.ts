import { describe, expect, it } from "vitest";
import {
  UploadQueue,
  outcomeSummary,
  visibleRows,
  type UploadOutcome,
  type UploadSource,
  type UploadTransport,
} from "./queue";

function fakeFile(name: string, size = 100): UploadSource {
  return new File([new Uint8Array(size)], name);
}

interface Pending {
  name: string;
  progress: (loaded: number) => void;
  signal: AbortSignal;
  resolve: (outcome: UploadOutcome) => void;
  reject: (error: Error) => void;
}

/** A transport the test drives by hand: every started upload waits in `pending`. */
function manualTransport(): { transport: UploadTransport; pending: Pending[]; started: string[] } {
  const pending: Pending[] = [];
  const started: string[] = [];
  const transport: UploadTransport = (file, progress, signal) =>
    new Promise((resolve, reject) => {
      started.push(file.name);
      const entry = { name: file.name, progress, signal, resolve, reject };
      pending.push(entry);
      signal.addEventListener("abort", () => {
        const error = new Error("cancelled");
        error.name = "AbortError";
        reject(error);
      });
    });
  return { transport, pending, started };
}

/** A scheduler that runs flushes only when the test says so. */
function manualSchedule(): { schedule: (flush: () => void) => void; flush: () => number } {
  let queued: (() => void)[] = [];
  return {
    schedule: (flush) => queued.push(flush),
    flush: () => {
      const run = queued;
      queued = [];
      run.forEach((f) => { f(); });
      return run.length;
    },
  };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

function created(name: string, id = 1): UploadOutcome {
  return { created: [{ id, original_name: name }], duplicates: [] };
}

describe("UploadQueue", () => {
  it("never runs more than `concurrency` uploads at once, in order", async () => {
    const { transport, pending, started } = manualTransport();
    const queue = new UploadQueue({ transport, concurrency: 3, schedule: manualSchedule().schedule });
    queue.add(["a", "b", "c", "d", "e"].map((n) => ({ file: fakeFile(n) })));
    expect(started).toEqual(["a", "b", "c"]);
    expect(queue.totals.active).toBe(3);
    pending[1]?.resolve(created("b"));
    await settle();
    expect(started).toEqual(["a", "b", "c", "d"]);
    expect(queue.totals.active).toBe(3);
    for (const p of pending) p.resolve(created(p.name));
    await settle();
    for (const p of pending.slice(4)) p.resolve(created(p.name));
    await settle();
    expect(started).toEqual(["a", "b", "c", "d", "e"]);
    expect(queue.totals).toMatchObject({ active: 0, finished: 5, done: 5, imagesCreated: 5 });
  });

  it("aggregates progress incrementally, bounded to each file's size", async () => {
    const { transport, pending } = manualTransport();
    const queue = new UploadQueue({ transport, concurrency: 2, schedule: manualSchedule().schedule });
    queue.add([{ file: fakeFile("a", 100) }, { file: fakeFile("b", 300) }]);
    expect(queue.totals.bytes).toBe(400);
    pending[0]?.progress(50);
    pending[1]?.progress(100);
    expect(queue.totals.loaded).toBe(150);
    pending[0]?.progress(500); // multipart overhead: never more than the file
    expect(queue.totals.loaded).toBe(400 - 200);
    expect(queue.items[0]?.loaded).toBe(100);
    pending[1]?.reject(new Error("b.png: not a readable image"));
    await settle();
    // a failed file counts as settled in the overall bar
    expect(queue.totals.loaded).toBe(400);
    expect(queue.items[1]).toMatchObject({ state: "error", message: "b.png: not a readable image" });
  });

  it("cancels one queued or running file, and all", async () => {
    const { transport, pending, started } = manualTransport();
    const queue = new UploadQueue({ transport, concurrency: 1, schedule: manualSchedule().schedule });
    const [a, b, c, d] = queue.add(["a", "b", "c", "d"].map((n) => ({ file: fakeFile(n, 10) })));
    pending[0]?.progress(4);
    queue.cancel(b!.id); // queued: never starts
    expect(b?.state).toBe("cancelled");
    queue.cancel(a!.id); // running: aborted
    expect(pending[0]?.signal.aborted).toBe(true);
    await settle();
    expect(a).toMatchObject({ state: "cancelled", loaded: 0 });
    expect(started).toEqual(["a", "c"]);
    queue.cancelAll();
    await settle();
    expect([c?.state, d?.state]).toEqual(["cancelled", "cancelled"]);
    expect(started).toEqual(["a", "c"]);
    expect(queue.totals).toMatchObject({ files: 4, cancelled: 4, active: 0, bytes: 0, loaded: 0 });
  });

  it("coalesces change notifications: one per scheduler tick, however many events", async () => {
    const { transport, pending } = manualTransport();
    const { schedule, flush } = manualSchedule();
    const queue = new UploadQueue({ transport, concurrency: 3, schedule });
    let renders = 0;
    queue.subscribe(() => renders++);
    queue.add(Array.from({ length: 50 }, (_, i) => ({ file: fakeFile(`${i}.png`, 1000) })));
    for (let step = 1; step <= 100; step++) for (const p of pending) p.progress(step * 10);
    expect(flush()).toBe(1);
    expect(renders).toBe(1);
    expect(flush()).toBe(0);
  });

  it("takes 1,000 files in one drop: bounded work per event and rows rendered", async () => {
    let calls = 0;
    const transport: UploadTransport = async (file, progress) => {
      calls++;
      progress(file.size / 2);
      await Promise.resolve();
      return created(file.name, calls);
    };
    const { schedule, flush } = manualSchedule();
    const queue = new UploadQueue({ transport, concurrency: 3, schedule });
    let renders = 0;
    queue.subscribe(() => renders++);
    const files = Array.from({ length: 1000 }, (_, i) => ({ file: fakeFile(`dir/${i}.jpg`, 1000 + i), path: `dir/${i}.jpg` }));

    const t0 = performance.now();
    queue.add(files);
    const enqueued = performance.now() - t0;
    const t1 = performance.now();
    const view = visibleRows(queue.items, "all", 100);
    const rowsTime = performance.now() - t1;
    expect(queue.totals.active).toBe(3);
    expect(view.rows).toHaveLength(100);
    expect(view.matching).toBe(1000);

    const t2 = performance.now();
    while (queue.totals.finished < 1000) {
      await settle();
      flush();
    }
    const drained = performance.now() - t2;
    expect(calls).toBe(1000);
    expect(queue.totals).toMatchObject({ done: 1000, imagesCreated: 1000, loaded: queue.totals.bytes });
    // one render per tick, not per file or per progress event (3,000 events here)
    expect(renders).toBeLessThan(1000);
    console.log(
      `1,000 files: enqueue ${enqueued.toFixed(2)} ms, first view (100 of 1,000 rows) ${rowsTime.toFixed(2)} ms, ` +
        `drain with a no-op transport ${drained.toFixed(1)} ms, ${renders} coalesced renders`,
    );
  });
});

describe("outcomes: errors and duplicates in place, retry", () => {
  it("maps the server's created and duplicates to a state and a message", () => {
    expect(outcomeSummary(created("a.png"))).toMatchObject({ state: "done", message: "", created: 1 });
    expect(outcomeSummary({ created: [], duplicates: [{ name: "a.png", existing_id: 7 }] })).toEqual({
      state: "duplicate",
      message: "already in this project (image 7)",
      existingId: 7,
      created: 0,
    });
    const zip = {
      created: [
        { id: 1, original_name: "x.png" },
        { id: 2, original_name: "y.png" },
      ],
      duplicates: [{ name: "z.png", existing_id: 3 }],
    };
    expect(outcomeSummary(zip)).toMatchObject({ state: "done", message: "2 images added, 1 already in this project" });
    const allDuplicates = {
      created: [],
      duplicates: [
        { name: "x.png", existing_id: 1 },
        { name: "y.png", existing_id: 2 },
      ],
    };
    expect(outcomeSummary(allDuplicates)).toMatchObject({ state: "duplicate", existingId: null, message: "all 2 images are already in this project" });
  });

  it("shows duplicates and errors in place, filterable", async () => {
    const transport: UploadTransport = async (file) => {
      if (file.name === "bad.png") throw new Error("bad.png: not a readable image in an allowed format");
      if (file.name === "again.png") return { created: [], duplicates: [{ name: "again.png", existing_id: 4 }] };
      return created(file.name);
    };
    const queue = new UploadQueue({ transport, schedule: manualSchedule().schedule });
    queue.add(["ok.png", "bad.png", "again.png"].map((n) => ({ file: fakeFile(n) })));
    await settle();
    expect(queue.items.map((i) => i.state)).toEqual(["done", "error", "duplicate"]);
    expect(visibleRows(queue.items, "failed", 10).rows.map((i) => i.message)).toEqual([
      "bad.png: not a readable image in an allowed format",
    ]);
    expect(visibleRows(queue.items, "duplicates", 10).rows.map((i) => i.existingId)).toEqual([4]);
    expect(queue.totals).toMatchObject({ done: 1, failed: 1, duplicates: 1, imagesCreated: 1 });
    queue.clearFinished();
    expect(queue.items).toHaveLength(0);
    expect(queue.totals).toMatchObject({ files: 0, bytes: 0, loaded: 0 });
  });

  it("retries failed files, one or all, in their place in the queue", async () => {
    let failing = true;
    const sent: string[] = [];
    const transport: UploadTransport = async (file) => {
      sent.push(file.name);
      if (failing && file.name.startsWith("bad")) throw new Error("The connection to the server failed.");
      return created(file.name);
    };
    const queue = new UploadQueue({ transport, concurrency: 1, schedule: manualSchedule().schedule });
    const [bad1, , bad2] = queue.add(["bad1.png", "ok.png", "bad2.png"].map((n) => ({ file: fakeFile(n, 10) })));
    await settle();
    expect(queue.totals).toMatchObject({ failed: 2, finished: 3, loaded: 30 });
    failing = false;
    queue.retry(bad2!.id);
    expect(queue.totals).toMatchObject({ failed: 1, finished: 2, loaded: 20 });
    await settle();
    expect(bad2?.state).toBe("done");
    queue.retry();
    await settle();
    expect(bad1?.state).toBe("done");
    expect(sent).toEqual(["bad1.png", "ok.png", "bad2.png", "bad2.png", "bad1.png"]);
    expect(queue.totals).toMatchObject({ done: 3, failed: 0, finished: 3, loaded: 30, bytes: 30 });
  });
});
