/** The upload queue: DOM-free. Files wait in order, at most `concurrency` upload at once,
 * progress is aggregated incrementally (O(1) per progress event, whatever the queue's length)
 * and listeners hear of changes at most once per `schedule` tick, so a drop of thousands of
 * files or a storm of progress events costs one re-render per tick. */

export type UploadState = "queued" | "uploading" | "done" | "duplicate" | "error" | "cancelled";

/** What a file needs to be uploaded: a File, or any Blob with a name. */
export interface UploadSource extends Blob {
  readonly name: string;
}

/** The server's answer to an upload (a plain POST or the last chunk of a chunked one). */
export interface UploadOutcome {
  created: { id: number; original_name: string }[];
  duplicates: { name: string; existing_id: number }[];
}

export interface UploadItem {
  readonly id: number;
  readonly file: UploadSource;
  /** Where it came from: the path inside a dropped folder, or the file name. */
  readonly path: string;
  state: UploadState;
  loaded: number;
  message: string;
  /** The image already in the project, for a duplicate. */
  existingId: number | null;
  created: number;
}

/** Uploads one file, reporting bytes sent; rejects with an Error whose message is shown, or
 * with an AbortError when the signal fires. */
export type UploadTransport = (
  file: UploadSource,
  onProgress: (loaded: number) => void,
  signal: AbortSignal,
) => Promise<UploadOutcome>;

export interface UploadTotals {
  files: number;
  finished: number;
  active: number;
  done: number;
  duplicates: number;
  failed: number;
  cancelled: number;
  /** Bytes of every file not cancelled, and how many of them are sent or settled. */
  bytes: number;
  loaded: number;
  imagesCreated: number;
}

export interface UploadQueueOptions {
  transport: UploadTransport;
  concurrency?: number;
  /** Runs a flush later; the queue asks for at most one pending flush at a time. */
  schedule?: (flush: () => void) => void;
}

const FINISHED: ReadonlySet<UploadState> = new Set(["done", "duplicate", "error", "cancelled"]);

/** The state, message and existing image of a file the server answered for. */
export function outcomeSummary(outcome: UploadOutcome): Pick<UploadItem, "state" | "message" | "existingId" | "created"> {
  const created = outcome.created.length;
  const duplicates = outcome.duplicates.length;
  const first = outcome.duplicates[0];
  if (created === 0 && first) {
    const message =
      duplicates === 1
        ? `already in this project (image ${first.existing_id})`
        : `all ${duplicates} images are already in this project`;
    return { state: "duplicate", message, existingId: duplicates === 1 ? first.existing_id : null, created };
  }
  const parts = [];
  if (created !== 1 || duplicates) parts.push(`${created} image${created === 1 ? "" : "s"} added`);
  if (duplicates) parts.push(`${duplicates} already in this project`);
  return { state: "done", message: parts.join(", "), existingId: null, created };
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

export class UploadQueue {
  readonly concurrency: number;
  private readonly transport: UploadTransport;
  private readonly schedule: (flush: () => void) => void;
  private readonly list: UploadItem[] = [];
  private readonly controllers = new Map<number, AbortController>();
  private readonly listeners = new Set<() => void>();
  private nextId = 1;
  /** Index of the first item that may still be queued: starting the next file is O(1) amortised. */
  private cursor = 0;
  private flushPending = false;
  private readonly sums: UploadTotals = {
    files: 0,
    finished: 0,
    active: 0,
    done: 0,
    duplicates: 0,
    failed: 0,
    cancelled: 0,
    bytes: 0,
    loaded: 0,
    imagesCreated: 0,
  };

  constructor(options: UploadQueueOptions) {
    this.transport = options.transport;
    this.concurrency = Math.max(1, options.concurrency ?? 3);
    this.schedule = options.schedule ?? ((flush) => setTimeout(flush, 100));
  }

  get items(): readonly UploadItem[] {
    return this.list;
  }

  get totals(): Readonly<UploadTotals> {
    return this.sums;
  }

  /** Listen to changes (coalesced); returns the function that stops listening. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  add(files: Iterable<{ file: UploadSource; path?: string }>): UploadItem[] {
    const added: UploadItem[] = [];
    for (const { file, path } of files) {
      const item: UploadItem = {
        id: this.nextId++,
        file,
        path: path || file.name,
        state: "queued",
        loaded: 0,
        message: "",
        existingId: null,
        created: 0,
      };
      this.list.push(item);
      added.push(item);
      this.sums.files++;
      this.sums.bytes += file.size;
    }
    this.pump();
    this.changed();
    return added;
  }

  cancel(id: number): void {
    const item = this.list.find((i) => i.id === id);
    if (item) this.cancelItem(item);
    this.changed();
  }

  cancelAll(): void {
    for (const item of this.list) this.cancelItem(item);
    this.changed();
  }

  /** Send failed files again (one, or all of them). */
  retry(id?: number): void {
    this.list.forEach((item, index) => {
      if (item.state !== "error" || (id !== undefined && item.id !== id)) return;
      this.sums.finished--;
      this.sums.failed--;
      this.sums.loaded -= item.loaded;
      item.loaded = 0;
      item.state = "queued";
      item.message = "";
      this.cursor = Math.min(this.cursor, index);
    });
    this.pump();
    this.changed();
  }

  /** Forget finished files (the counts start again from the ones still going). */
  clearFinished(): void {
    const kept = this.list.filter((i) => !FINISHED.has(i.state));
    this.list.splice(0, this.list.length, ...kept);
    this.cursor = 0;
    Object.assign(this.sums, { files: kept.length, finished: 0, done: 0, duplicates: 0, failed: 0, cancelled: 0 });
    this.sums.bytes = kept.reduce((sum, i) => sum + i.file.size, 0);
    this.sums.loaded = kept.reduce((sum, i) => sum + i.loaded, 0);
    this.sums.imagesCreated = 0;
    this.changed();
  }

  private cancelItem(item: UploadItem): void {
    if (item.state === "uploading") {
      // The transport's rejection settles it; the counts change there.
      this.controllers.get(item.id)?.abort();
      return;
    }
    if (item.state !== "queued") return;
    this.sums.bytes -= item.file.size;
    this.finish(item, "cancelled", "");
  }

  private pump(): void {
    while (this.sums.active < this.concurrency) {
      while (this.cursor < this.list.length && this.list[this.cursor]?.state !== "queued") this.cursor++;
      const next = this.list[this.cursor];
      if (!next) return;
      void this.run(next);
    }
  }

  private async run(item: UploadItem): Promise<void> {
    const controller = new AbortController();
    this.controllers.set(item.id, controller);
    item.state = "uploading";
    this.sums.active++;
    const progress = (loaded: number): void => {
      if (item.state !== "uploading") return;
      const bounded = Math.min(Math.max(loaded, 0), item.file.size);
      this.sums.loaded += bounded - item.loaded;
      item.loaded = bounded;
      this.changed();
    };
    try {
      const outcome = await this.transport(item.file, progress, controller.signal);
      const summary = outcomeSummary(outcome);
      progress(item.file.size);
      this.sums.imagesCreated += summary.created;
      item.existingId = summary.existingId;
      item.created = summary.created;
      this.finish(item, summary.state, summary.message);
    } catch (error) {
      if (controller.signal.aborted || isAbort(error)) {
        this.sums.bytes -= item.file.size;
        this.sums.loaded -= item.loaded;
        item.loaded = 0;
        this.finish(item, "cancelled", "");
      } else {
        // A failed file counts as settled in the overall bar.
        this.sums.loaded += item.file.size - item.loaded;
        item.loaded = item.file.size;
        this.finish(item, "error", error instanceof Error ? error.message : String(error));
      }
    } finally {
      this.controllers.delete(item.id);
      this.sums.active--;
      this.pump();
      this.changed();
    }
  }

  private finish(item: UploadItem, state: UploadState, message: string): void {
    item.state = state;
    item.message = message;
    this.sums.finished++;
    if (state === "done") this.sums.done++;
    else if (state === "duplicate") this.sums.duplicates++;
    else if (state === "error") this.sums.failed++;
    else this.sums.cancelled++;
  }

  private changed(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    this.schedule(() => {
      this.flushPending = false;
      for (const listener of this.listeners) listener();
    });
  }
}

export type UploadFilter = "all" | "active" | "failed" | "duplicates";

const FILTERS: Record<UploadFilter, (item: UploadItem) => boolean> = {
  all: () => true,
  active: (i) => i.state === "queued" || i.state === "uploading",
  failed: (i) => i.state === "error",
  duplicates: (i) => i.state === "duplicate",
};

/** The rows to render: at most `limit`, whatever the queue's length; `matching` counts all. */
export function visibleRows(
  items: readonly UploadItem[],
  filter: UploadFilter,
  limit: number,
): { rows: UploadItem[]; matching: number } {
  const keep = FILTERS[filter];
  const rows: UploadItem[] = [];
  let matching = 0;
  for (const item of items) {
    if (!keep(item)) continue;
    matching++;
    if (rows.length < limit) rows.push(item);
  }
  return { rows, matching };
}
