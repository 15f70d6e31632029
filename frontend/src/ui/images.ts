import { html, type TemplateResult } from "lit";
import { api, request } from "../api/client";
import type { ImageItem, Job, Page, Project } from "../api/types";
import { config } from "../config";
import type { PresenceUser, ServerEvent } from "../realtime/socket";
import { fromDataTransfer } from "../upload/files";
import "../upload/panel";
import type { UploadPanel } from "../upload/panel";
import { projectNav } from "./projectNav";
import { ProjectRoomPage } from "./roomPage";

interface Member {
  id: number;
  user: number;
  username: string;
  role: string;
}

const STATUSES = ["", "new", "in_progress", "done", "reviewed"] as const;
const UPLOAD_ROLES = new Set(["owner", "manager"]);

export class ImagesPage extends ProjectRoomPage {
  private project: Project | null = null;
  private images: ImageItem[] = [];
  private count = 0;
  private page = 1;
  private members: Member[] = [];
  private status = "";
  private assignee = "";
  private error = "";
  private loading = true;
  private exportFormat = "coco";
  private exportJob: Job | null = null;
  private segmentAll: { done: number; total: number; failed: number } | null = null;
  private presence: PresenceUser[] = [];
  private dropping = false;
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;

  override connectedCallback(): void {
    this.readFilters();
    super.connectedCallback();
  }

  private readFilters(): void {
    const params = new URLSearchParams(location.search);
    this.status = params.get("status") ?? "";
    this.assignee = params.get("assignee") ?? "";
  }

  protected override onEvent(event: ServerEvent): void {
    if (event.event === "presence") {
      this.presence = event.payload.users.filter((u) => u.id !== config.user.id && u.image !== null);
      this.requestUpdate();
    }
    if (event.event === "job.progress" && event.payload.kind === "export" && this.exportJob && event.payload.id === this.exportJob.id) {
      this.exportJob = { ...this.exportJob, state: event.payload.state, progress: event.payload.progress };
      if (event.payload.state === "done") void this.pollExport();
      this.requestUpdate();
    }
  }

  protected override async load(): Promise<void> {
    this.loading = true;
    this.requestUpdate();
    try {
      this.project ??= await api.project(this.projectId);
      if (this.members.length === 0) {
        try {
          this.members = (await request<Page<Member>>("GET", `/api/projects/${this.projectId}/members/`)).results;
        } catch {
          this.members = [];
        }
      }
      const page = await api.images(this.projectId, {
        status: this.status,
        assignee: this.assignee,
        page: this.page,
        page_size: 48,
      });
      this.images = page.results;
      this.count = page.count;
      this.error = "";
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.loading = false;
    this.requestUpdate();
  }

  private canUpload(): boolean {
    return UPLOAD_ROLES.has(this.project?.role ?? "");
  }

  private onDragOver(event: DragEvent): void {
    if (!event.dataTransfer?.types.includes("Files")) return;
    // Taken even when refused: a file dropped on the page must not replace the app.
    event.preventDefault();
    event.dataTransfer.dropEffect = this.canUpload() ? "copy" : "none";
    if (this.canUpload() && !this.dropping) {
      this.dropping = true;
      this.requestUpdate();
    }
  }

  private onDragLeave(event: DragEvent): void {
    if (event.relatedTarget instanceof Node && this.contains(event.relatedTarget)) return;
    this.dropping = false;
    this.requestUpdate();
  }

  private async onDrop(event: DragEvent): Promise<void> {
    if (!event.dataTransfer) return;
    event.preventDefault();
    if (!this.canUpload()) {
      this.error = "Only the project's owners and managers upload images.";
      this.requestUpdate();
      return;
    }
    this.dropping = false;
    this.requestUpdate();
    const picked = await fromDataTransfer(event.dataTransfer);
    this.querySelector<UploadPanel>("upload-panel")?.add(picked);
  }

  /** New images arrive while uploads go on: refresh the grid at most once a second. */
  private onUploaded(): void {
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = null;
      void this.reloadAfterUpload();
    }, 1000);
  }

  private async reloadAfterUpload(): Promise<void> {
    try {
      this.project = await api.project(this.projectId); // fresh status counts
    } catch {
      // the grid's own load below reports a lost connection
    }
    await this.load();
  }

  override disconnectedCallback(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    super.disconnectedCallback();
  }

  private setFilter(kind: "status" | "assignee", value: string): void {
    if (kind === "status") this.status = value;
    else this.assignee = value;
    this.page = 1;
    const params = new URLSearchParams();
    if (this.status) params.set("status", this.status);
    if (this.assignee) params.set("assignee", this.assignee);
    const qs = params.toString();
    history.replaceState(null, "", `/projects/${this.projectId}${qs ? `?${qs}` : ""}`);
    void this.load();
  }

  private async startExport(): Promise<void> {
    try {
      this.exportJob = await api.startExport(this.projectId, this.exportFormat);
      this.requestUpdate();
      await this.pollExport();
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
      this.requestUpdate();
    }
  }

  private async pollExport(): Promise<void> {
    const job = this.exportJob;
    if (!job) return;
    for (let i = 0; i < 600; i++) {
      const fresh = await api.exportJob(this.projectId, job.id);
      this.exportJob = fresh;
      this.requestUpdate();
      if (fresh.download_url || ["done", "succeeded", "failed", "error"].includes(fresh.state)) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** "Segment everything" over the whole project: one job per image, queued one by one. */
  private async segmentProject(): Promise<void> {
    if (this.segmentAll) return;
    const ids: number[] = [];
    for (let page = 1; ; page++) {
      const result = await api.images(this.projectId, { page, page_size: 200 });
      ids.push(...result.results.map((i) => i.id));
      if (!result.next) break;
    }
    this.segmentAll = { done: 0, total: ids.length, failed: 0 };
    this.requestUpdate();
    for (const id of ids) {
      try {
        await api.segmentEverything(this.projectId, id);
      } catch {
        this.segmentAll.failed++;
      }
      this.segmentAll.done++;
      this.requestUpdate();
    }
  }

  private exportStatus(): TemplateResult | null {
    const job = this.exportJob;
    if (!job) return null;
    if (job.download_url)
      return html`<a class="button" data-testid="export-download" href=${job.download_url} download>Download export</a>`;
    if (job.state === "failed")
      return html`<span class="error">Export failed${job.error ? `: ${job.error}` : ""}</span>`;
    return html`<span class="muted" data-testid="export-progress">Exporting… ${Math.round((job.progress ?? 0) * 100)}%</span>`;
  }

  private memberName(id: number | null): string {
    if (id === null) return "unassigned";
    return this.members.find((m) => m.user === id)?.username ?? `user ${id}`;
  }

  override render(): TemplateResult {
    const p = this.project;
    const pages = Math.max(1, Math.ceil(this.count / 48));
    return html`<main
      class="page ${this.dropping ? "dropping" : ""}"
      @dragover=${(e: DragEvent) => this.onDragOver(e)}
      @dragleave=${(e: DragEvent) => this.onDragLeave(e)}
      @drop=${(e: DragEvent) => void this.onDrop(e)}
    >
      ${projectNav(this.projectId, p?.name, "images")}
      <div class="toolbar">
        <h1>${p?.name ?? "Project"}</h1>
        <span class="spacer"></span>
        ${this.segmentAll
          ? html`<span class="small muted" data-testid="segment-all-progress">Segment everything: ${this.segmentAll.done}/${this.segmentAll.total} images queued${this.segmentAll.failed ? `, ${this.segmentAll.failed} failed` : ""}</span>`
          : html`<button data-testid="segment-all" @click=${() => void this.segmentProject()}>Segment everything (all images)</button>`}
        <a class="button" href="/projects/${this.projectId}/review" data-testid="review-link">Review proposals</a>
        <a class="button" href="/projects/${this.projectId}/models" data-testid="models-link">Models</a>
      </div>
      ${p?.status_counts
        ? html`<p class="small muted">${Object.entries(p.status_counts).map(([k, v]) => `${k.replace("_", " ")}: ${v}`).join(" · ")}</p>`
        : null}
      <div class="filters">
        <label>Status
          <select data-testid="status-filter" @change=${(e: Event) => this.setFilter("status", (e.target as HTMLSelectElement).value)}>
            ${STATUSES.map((s) => html`<option value=${s} ?selected=${s === this.status}>${s ? s.replace("_", " ") : "any"}</option>`)}
          </select>
        </label>
        <label>Assignee
          <select data-testid="assignee-filter" @change=${(e: Event) => this.setFilter("assignee", (e.target as HTMLSelectElement).value)}>
            <option value="" ?selected=${this.assignee === ""}>anyone</option>
            ${this.members.map((m) => html`<option value=${m.user} ?selected=${String(m.user) === this.assignee}>${m.username}</option>`)}
          </select>
        </label>
        <span class="spacer"></span>
        <label>Export
          <select @change=${(e: Event) => (this.exportFormat = (e.target as HTMLSelectElement).value)}>
            ${["coco", "yolo", "png", "voc"].map((f) => html`<option value=${f}>${f.toUpperCase()}</option>`)}
          </select>
        </label>
        <button data-testid="export-button" @click=${() => void this.startExport()}>Export</button>
        ${this.exportStatus()}
      </div>
      ${this.canUpload()
        ? html`<upload-panel .projectId=${this.projectId} @uploaded=${() => this.onUploaded()}></upload-panel>`
        : null}
      ${this.dropping ? html`<p class="drop-hint" data-testid="drop-hint">Drop images, folders or zip files to upload them</p>` : null}
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : null}
      ${this.loading && this.images.length === 0 ? html`<p class="muted">Loading images…</p>` : null}
      ${!this.loading && this.images.length === 0 ? html`<p class="muted">No images match these filters.</p>` : null}
      <ul class="grid">
        ${this.images.map(
          (img) => html`<li class="tile">
            <a href="/projects/${this.projectId}/images/${img.id}" data-testid="image-tile" data-name=${img.original_name}>
              <img loading="lazy" src=${api.imageFileUrl(this.projectId, img.id)} alt=${img.original_name} />
              <span class="tile-name">${img.original_name}</span>
            </a>
            <span class="status status-${img.status}">${img.status.replace("_", " ")}</span>
            <span class="small muted">${this.memberName(img.assignee)}</span>
            ${this.presence.some((u) => u.image === img.id)
              ? html`<span class="small" data-testid="tile-presence">👁 ${this.presence.filter((u) => u.image === img.id).map((u) => u.username).join(", ")}</span>`
              : null}
          </li>`,
        )}
      </ul>
      ${pages > 1
        ? html`<div class="pager">
            <button ?disabled=${this.page <= 1} @click=${() => { this.page--; void this.load(); }}>‹ Prev</button>
            <span>${this.page} / ${pages}</span>
            <button ?disabled=${this.page >= pages} @click=${() => { this.page++; void this.load(); }}>Next ›</button>
          </div>`
        : null}
    </main>`;
  }
}
customElements.define("images-page", ImagesPage);
