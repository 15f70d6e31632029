/** <upload-panel>: file and folder pickers, the overall progress bar, and the list of files
 * with their own bars, errors and duplicates. Only a bounded number of rows is rendered,
 * and the queue's changes arrive coalesced, so a drop of thousands of files stays cheap. */
import { LitElement, html, nothing, type TemplateResult } from "lit";
import { csrfToken } from "../api/client";
import { config } from "../config";
import { UPLOAD_ACCEPT, fromFileList, type Picked } from "./files";
import { UploadQueue, visibleRows, type UploadFilter, type UploadItem } from "./queue";
import { DEFAULT_TRANSPORT_OPTIONS, createTransport, xhrSend } from "./transport";

export const ROWS_PER_PAGE = 100;
const CONCURRENCY = 3;

const STATE_TEXT: Record<UploadItem["state"], string> = {
  queued: "waiting",
  uploading: "uploading",
  done: "uploaded",
  duplicate: "duplicate",
  error: "failed",
  cancelled: "cancelled",
};

function nextFrame(flush: () => void): void {
  // Coalesce to at most one render per 100 ms: progress events of three uploads stay cheap.
  setTimeout(() => requestAnimationFrame(flush), 100);
}

export class UploadPanel extends LitElement {
  projectId = 0;
  static override properties = { projectId: { type: Number } };

  private queue: UploadQueue | null = null;
  private unsubscribe: (() => void) | null = null;
  private filter: UploadFilter = "all";
  private limit = ROWS_PER_PAGE;
  private skipped = 0;
  private reportedImages = 0;

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  /** Closing or reloading the tab while files are still going asks first. */
  private readonly guardUnload = (event: BeforeUnloadEvent): void => {
    const t = this.queue?.totals;
    if (t && t.finished < t.files) event.preventDefault();
  };

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("beforeunload", this.guardUnload);
    this.queue = new UploadQueue({
      transport: createTransport(this.projectId, xhrSend(csrfToken), {
        ...DEFAULT_TRANSPORT_OPTIONS,
        singleRequestBytes: config.uploadChunkBytes,
      }),
      concurrency: CONCURRENCY,
      schedule: nextFrame,
    });
    this.unsubscribe = this.queue.subscribe(() => { this.onQueueChange(); });
  }

  override disconnectedCallback(): void {
    window.removeEventListener("beforeunload", this.guardUnload);
    this.queue?.cancelAll();
    this.unsubscribe?.();
    super.disconnectedCallback();
  }

  /** Queue picked or dropped files. */
  add(picked: Picked): void {
    this.skipped += picked.skipped;
    this.queue?.add(picked.files);
    this.requestUpdate();
  }

  private onQueueChange(): void {
    const created = this.queue?.totals.imagesCreated ?? 0;
    if (created !== this.reportedImages) {
      this.reportedImages = created;
      this.dispatchEvent(new CustomEvent("uploaded", { bubbles: true, detail: { images: created } }));
    }
    this.requestUpdate();
  }

  private pick(event: Event): void {
    const input = event.target as HTMLInputElement;
    if (input.files) this.add(fromFileList(input.files));
    input.value = "";
  }

  private open(selector: string): void {
    this.querySelector<HTMLInputElement>(selector)?.click();
  }

  private clear(): void {
    this.queue?.clearFinished();
    this.skipped = 0;
    this.reportedImages = 0;
    this.limit = ROWS_PER_PAGE;
  }

  private row(item: UploadItem): TemplateResult {
    const going = item.state === "queued" || item.state === "uploading";
    return html`<li class="upload-row upload-${item.state}" data-testid="upload-row">
      <span class="upload-name" title=${item.path}>${item.path}</span>
      <progress max=${item.file.size || 1} .value=${item.loaded} aria-label=${`Upload progress of ${item.path}`}></progress>
      <span class="small upload-state">${STATE_TEXT[item.state]}</span>
      ${going
        ? html`<button class="link danger" aria-label=${`Cancel upload of ${item.path}`} @click=${() => this.queue?.cancel(item.id)}>Cancel</button>`
        : nothing}
      ${item.state === "error"
        ? html`<button class="link" aria-label=${`Retry upload of ${item.path}`} @click=${() => this.queue?.retry(item.id)}>Retry</button>`
        : nothing}
      ${item.message
        ? html`<span class="small upload-message ${item.state === "error" ? "error" : "muted"}" role=${item.state === "error" ? "alert" : nothing}>${item.message}${item.existingId !== null
            ? html` · <a href="/projects/${this.projectId}/images/${item.existingId}">open it</a>`
            : nothing}</span>`
        : nothing}
    </li>`;
  }

  override render(): TemplateResult {
    const queue = this.queue;
    const t = queue?.totals;
    const pickers = html`<input type="file" multiple hidden accept=${UPLOAD_ACCEPT} data-testid="upload-files-input" aria-label="Choose images or zip files" @change=${(e: Event) => { this.pick(e); }} />
      <input type="file" multiple hidden webkitdirectory data-testid="upload-folder-input" aria-label="Choose a folder" @change=${(e: Event) => { this.pick(e); }} />
      <button @click=${() => { this.open("[data-testid=upload-files-input]"); }}>Upload files…</button>
      <button @click=${() => { this.open("[data-testid=upload-folder-input]"); }}>Upload folder…</button>`;
    if (!queue || !t || t.files === 0) {
      return html`<section class="upload-panel" aria-label="Upload">
        <div class="toolbar">${pickers}<span class="small muted">or drop images, folders and zip files on the grid</span></div>
      </section>`;
    }
    const { rows, matching } = visibleRows(queue.items, this.filter, this.limit);
    const working = t.active > 0 || t.finished < t.files;
    return html`<section class="upload-panel" aria-label="Upload" data-testid="upload-panel">
      <div class="toolbar">
        ${pickers}
        <progress class="upload-overall" max=${t.bytes || 1} .value=${t.loaded} aria-label="Overall upload progress" data-testid="upload-overall"></progress>
        <span class="small" role="status" data-testid="upload-summary">${t.finished}/${t.files} files · ${t.imagesCreated} images added${t.duplicates ? ` · ${t.duplicates} duplicates` : ""}${t.failed ? ` · ${t.failed} failed` : ""}${t.cancelled ? ` · ${t.cancelled} cancelled` : ""}${this.skipped ? ` · ${this.skipped} skipped (not an image or zip)` : ""}</span>
        <span class="spacer"></span>
        ${t.failed ? html`<button @click=${() => { queue.retry(); }}>Retry failed uploads</button>` : nothing}
        ${working
          ? html`<button class="danger" @click=${() => { queue.cancelAll(); }}>Cancel all uploads</button>`
          : html`<button @click=${() => { this.clear(); }}>Clear finished uploads</button>`}
      </div>
      <div class="toolbar">
        <label class="small">Show
          <select aria-label="Show uploads" @change=${(e: Event) => {
            this.filter = (e.target as HTMLSelectElement).value as UploadFilter;
            this.limit = ROWS_PER_PAGE;
            this.requestUpdate();
          }}>
            <option value="all">all files</option>
            <option value="active">waiting and uploading</option>
            <option value="failed">failed</option>
            <option value="duplicates">duplicates</option>
          </select>
        </label>
      </div>
      <ul class="upload-list" aria-label="Uploads">${rows.map((item) => this.row(item))}</ul>
      ${matching > rows.length
        ? html`<button @click=${() => {
            this.limit += ROWS_PER_PAGE;
            this.requestUpdate();
          }}>Show ${Math.min(ROWS_PER_PAGE, matching - rows.length)} more of ${matching - rows.length}</button>`
        : nothing}
    </section>`;
  }
}
customElements.define("upload-panel", UploadPanel);
