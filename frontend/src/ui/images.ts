import { html, type TemplateResult } from "lit";
import { live } from "lit/directives/live.js";
import { api } from "../api/client";
import type { ImageItem, Project } from "../api/types";
import { messageOf, problemsOf, work, type Member } from "../api/work";
import { config } from "../config";
import type { PresenceUser, ServerEvent } from "../realtime/socket";
import { fromDataTransfer } from "../upload/files";
import "../upload/panel";
import type { UploadPanel } from "../upload/panel";
import { projectNav } from "./projectNav";
import { Selection } from "../work/selection";
import "../work/exportDialog";
import "../work/importDialog";
import "../work/segmentDialog";
import { ProjectRoomPage, projectTeam } from "./roomPage";

type Dialog = "export" | "import" | "segment" | null;

const STATUSES = ["", "new", "in_progress", "done", "reviewed"] as const;
const UPLOAD_ROLES = new Set(["owner", "manager"]);
const ANNOTATING_ROLES = new Set(["owner", "manager", "reviewer", "annotator"]);

export class ImagesPage extends ProjectRoomPage {
  private project: Project | null = null;
  private images: ImageItem[] = [];
  private count = 0;
  private page = 1;
  private members: Member[] = [];
  private status = "";
  private assignee = "";
  private error = "";
  private readonly selection = new Selection();
  private assignTo = "";
  private dialog: Dialog = null;
  private notice = "";
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
  }

  protected override async load(): Promise<void> {
    await this.whileLoading(async (isLatest) => {
      try {
        [this.project, this.members] = await projectTeam(this.projectId, this.project, this.members);
        const page = await api.images(this.projectId, {
          status: this.status,
          assignee: this.assignee,
          page: this.page,
          page_size: 48,
        });
        if (!isLatest()) return;
        this.images = page.results;
        this.count = page.count;
        this.selection.keepOnly(this.images.map((i) => i.id));
        this.error = "";
      } catch (error) {
        if (isLatest()) this.error = messageOf(error);
      }
    });
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

  private pick(event: MouseEvent, id: number): void {
    this.selection.click(id, this.images.map((i) => i.id), event.shiftKey);
    this.requestUpdate();
  }

  private async assign(): Promise<void> {
    const ids = this.selection.ids();
    if (ids.length === 0 || this.assignTo === "") return;
    try {
      const result = await work.assign(this.projectId, ids, this.assignTo === "none" ? null : Number(this.assignTo));
      this.notice = `${result.assigned.length} image${result.assigned.length === 1 ? "" : "s"} assigned to ${this.assignTo === "none" ? "nobody" : this.memberName(Number(this.assignTo))}.`;
      this.selection.clear();
      await this.load();
    } catch (error) {
      this.error = problemsOf(error).join(" ");
      this.requestUpdate();
    }
  }

  private open(dialog: Dialog): void {
    this.dialog = dialog;
    this.requestUpdate();
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
      @dragover=${(e: DragEvent) => { this.onDragOver(e); }}
      @dragleave=${(e: DragEvent) => { this.onDragLeave(e); }}
      @drop=${(e: DragEvent) => void this.onDrop(e)}
    >
      ${projectNav(this.projectId, p?.name, "images")}
      <div class="toolbar">
        <h1>${p?.name ?? "Project"}</h1>
        <span class="spacer"></span>
        <a class="button" href="/projects/${this.projectId}/queue">My queue</a>
        <a class="button" href="/projects/${this.projectId}/review" data-testid="review-link">Review</a>
        <button @click=${() => { this.open("export"); }}>Export…</button>
        ${this.canUpload() ? html`<button @click=${() => { this.open("import"); }}>Import…</button>` : null}
        <a class="button" href="/projects/${this.projectId}/models" data-testid="models-link">Models</a>
      </div>
      ${p?.status_counts
        ? html`<p class="small muted">${Object.entries(p.status_counts).map(([k, v]) => `${k.replace("_", " ")}: ${v}`).join(" · ")}</p>`
        : null}
      <div class="filters">
        <label>Status
          <select data-testid="status-filter" @change=${(e: Event) => { this.setFilter("status", (e.target as HTMLSelectElement).value); }}>
            ${STATUSES.map((s) => html`<option value=${s} ?selected=${s === this.status}>${s ? s.replace("_", " ") : "any"}</option>`)}
          </select>
        </label>
        <label>Assignee
          <select data-testid="assignee-filter" @change=${(e: Event) => { this.setFilter("assignee", (e.target as HTMLSelectElement).value); }}>
            <option value="" ?selected=${this.assignee === ""}>anyone</option>
            ${this.members.map((m) => html`<option value=${m.user} ?selected=${String(m.user) === this.assignee}>${m.username}</option>`)}
          </select>
        </label>
      </div>
      ${this.selectionBar()}
      ${this.canUpload()
        ? html`<upload-panel .projectId=${this.projectId} @uploaded=${() => { this.onUploaded(); }}></upload-panel>`
        : null}
      ${this.dropping ? html`<p class="drop-hint" data-testid="drop-hint">Drop images, folders or zip files to upload them</p>` : null}
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : null}
      ${this.notice ? html`<p class="small" role="status">${this.notice}</p>` : null}
      ${this.loading && this.images.length === 0 ? html`<p class="muted">Loading images…</p>` : null}
      ${!this.loading && this.images.length === 0 ? html`<p class="muted">No images match these filters.</p>` : null}
      <ul class="grid">
        ${this.images.map(
          (img) => html`<li class="tile ${this.selection.has(img.id) ? "on" : ""}">
            <label class="pick"><input type="checkbox" .checked=${live(this.selection.has(img.id))} aria-label="Select ${img.original_name}"
              @click=${(e: MouseEvent) => { this.pick(e, img.id); }} /></label>
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
      ${this.dialogs()}
    </main>`;
  }

  private selectionBar(): TemplateResult {
    const ids = this.images.map((i) => i.id);
    const n = this.selection.size;
    const manager = this.canUpload();
    return html`<div class="filters selection-bar" role="group" aria-label="Selected images">
      <button @click=${() => { this.selection.selectAll(ids); this.requestUpdate(); }}>Select all</button>
      <button ?disabled=${n === 0} @click=${() => { this.selection.clear(); this.requestUpdate(); }}>Select none</button>
      <span class="small muted" role="status">${n} selected <span class="small">(shift-click picks a range)</span></span>
      ${manager
        ? html`<label>Assign to
            <select @change=${(e: Event) => { this.assignTo = (e.target as HTMLSelectElement).value; this.requestUpdate(); }}>
              <option value="" ?selected=${this.assignTo === ""}>choose a member…</option>
              <option value="none" ?selected=${this.assignTo === "none"}>nobody (unassign)</option>
              ${this.members.filter((m) => ANNOTATING_ROLES.has(m.role)).map((m) => html`<option value=${m.user} ?selected=${String(m.user) === this.assignTo}>${m.username} (${m.role})</option>`)}
            </select>
          </label>
          <button class="primary" ?disabled=${n === 0 || this.assignTo === ""} @click=${() => void this.assign()}>Assign ${n || ""}</button>`
        : null}
      <button ?disabled=${n === 0} @click=${() => { this.open("segment"); }}>Segment everything…</button>
    </div>`;
  }

  private dialogs(): TemplateResult | null {
    const close = (): void => { this.open(null); };
    switch (this.dialog) {
      case "export":
        return html`<export-dialog .projectId=${this.projectId} .labels=${this.project?.labels ?? []} @close=${close}></export-dialog>`;
      case "import":
        return html`<import-dialog .projectId=${this.projectId} @close=${close} @imported=${() => void this.reloadAfterUpload()}></import-dialog>`;
      case "segment":
        return html`<segment-dialog .projectId=${this.projectId} .imageIds=${this.selection.ids()} @close=${close}></segment-dialog>`;
      default:
        return null;
    }
  }
}
customElements.define("images-page", ImagesPage);
