/** Review page: annotations filtered by review state, annotator, label and image, each shown
 * as its mask over a crop of the image; accepted or rejected (with a reason the annotator
 * sees) one by one or in bulk. Teammates' changes arrive over the room's websocket. */
import { html, nothing, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { Annotation, ImageItem, Project, ReviewState } from "../api/types";
import { problemsOf, work, type Member } from "../api/work";
import type { ServerEvent } from "../realtime/socket";
import { decodeRle } from "../sam/rle";
import { applyEvent, bringsUnlisted, filtersFromQuery, filtersToQuery, type ReviewFilters } from "../work/reviewFilter";
import "../work/rejectDialog";
import { hexToRgb, paintMask, UNLABELLED_COLOR } from "./colors";
import { projectNav } from "./projectNav";
import { ProjectRoomPage, projectTeam } from "./roomPage";
import { typingInField } from "./shortcuts";

const STATES: [ReviewState, string][] = [
  ["proposed", "Pending review"],
  ["rejected", "Rejected"],
  ["accepted", "Accepted"],
];

export class ReviewPage extends ProjectRoomPage {
  private project: Project | null = null;
  private members: Member[] = [];
  private imageList: ImageItem[] = [];
  private items: Annotation[] = [];
  private count = 0;
  private selected = new Set<number>();
  private filters: ReviewFilters = filtersFromQuery(location.search);
  private error = "";
  private busy = false;
  /** The ids a reject dialog is open for. */
  private rejecting: number[] | null = null;
  private thumbs = new Map<number, Promise<HTMLImageElement>>();

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("keydown", this.onKey);
  }

  override disconnectedCallback(): void {
    window.removeEventListener("keydown", this.onKey);
    super.disconnectedCallback();
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    if (typingInField(event) || this.rejecting || event.ctrlKey || event.metaKey || event.altKey || this.selected.size === 0) return;
    if (event.key === "a") void this.review([...this.selected], "accepted");
    else if (event.key === "r") this.openReject([...this.selected]);
  };

  protected override onEvent(event: ServerEvent): void {
    if (event.event === "annotations.bulk_created" || bringsUnlisted(this.items, event, this.filters)) {
      void this.load();
      return;
    }
    const next = applyEvent(this.items, event, this.filters);
    if (next === this.items) return;
    this.count += next.length - this.items.length;
    this.items = next;
    this.keepListedSelection();
    this.requestUpdate();
  }

  private keepListedSelection(): void {
    const listed = new Set(this.items.map((a) => a.id));
    for (const id of this.selected) if (!listed.has(id)) this.selected.delete(id);
  }

  protected override async load(): Promise<void> {
    await this.whileLoading(async (isLatest) => {
      try {
        [this.project, this.members] = await projectTeam(this.projectId, this.project, this.members);
        if (this.imageList.length === 0) this.imageList = (await api.images(this.projectId, { page_size: 500 })).results;
        const page = await work.annotations(this.projectId, this.filters);
        if (!isLatest()) return;
        this.items = page.results;
        this.count = page.count;
        // A teammate's change reloads the list under the reviewer: what is still listed stays selected.
        this.keepListedSelection();
        this.error = "";
      } catch (error) {
        if (isLatest()) this.error = problemsOf(error).join(" ");
      }
    });
  }

  private setFilter(change: Partial<ReviewFilters>): void {
    this.filters = { ...this.filters, ...change };
    this.selected.clear();
    history.replaceState(null, "", `/projects/${this.projectId}/review${filtersToQuery(this.filters)}`);
    void this.load();
  }

  private async review(ids: number[], state: "accepted" | "rejected", reason = ""): Promise<void> {
    if (ids.length === 0) return;
    this.busy = true;
    this.requestUpdate();
    try {
      await work.review(this.projectId, ids, state, reason);
      // The room's events bring the changes too; this shows them without waiting.
      const gone = new Set(ids);
      if (state !== this.filters.review_state) {
        this.items = this.items.filter((a) => !gone.has(a.id));
        this.count -= gone.size;
      }
      for (const id of ids) this.selected.delete(id);
      this.error = "";
    } catch (error) {
      this.error = problemsOf(error).join(" ");
    }
    this.busy = false;
    this.rejecting = null;
    this.requestUpdate();
  }

  private openReject(ids: number[]): void {
    this.rejecting = ids;
    this.requestUpdate();
  }

  private image(imageId: number): Promise<HTMLImageElement> {
    let promise = this.thumbs.get(imageId);
    if (!promise) {
      promise = new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => { resolve(img); };
        img.onerror = () => { reject(new Error("image failed to load")); };
        img.src = api.imageFileUrl(this.projectId, imageId);
      });
      this.thumbs.set(imageId, promise);
    }
    return promise;
  }

  private drawThumb(canvas: HTMLCanvasElement, a: Annotation): void {
    if (canvas.dataset.drawn === `${a.id}:${a.version}`) return;
    canvas.dataset.drawn = `${a.id}:${a.version}`;
    void this.image(a.image).then((img) => {
      const [h, w] = a.rle.size;
      const [bx = 0, by = 0, bw = w, bh = h] = a.bbox;
      const pad = Math.max(bw, bh) * 0.25 + 4;
      const x0 = Math.max(0, bx - pad);
      const y0 = Math.max(0, by - pad);
      const x1 = Math.min(w, bx + bw + pad);
      const y1 = Math.min(h, by + bh + pad);
      const f = 160 / Math.max(x1 - x0, y1 - y0);
      canvas.width = Math.max(1, Math.round((x1 - x0) * f));
      canvas.height = Math.max(1, Math.round((y1 - y0) * f));
      const ctx = canvas.getContext("2d");
      const layer = document.createElement("canvas");
      layer.width = w;
      layer.height = h;
      const lctx = layer.getContext("2d");
      if (!ctx || !lctx) return;
      ctx.drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
      const data = lctx.createImageData(w, h);
      paintMask(data.data, decodeRle(a.rle), hexToRgb(this.labelOf(a.label)?.color ?? UNLABELLED_COLOR));
      lctx.putImageData(data, 0, 0);
      ctx.globalAlpha = 0.5;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(layer, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
    });
  }

  protected override updated(): void {
    for (const canvas of this.querySelectorAll<HTMLCanvasElement>("canvas.thumb")) {
      const a = this.items.find((x) => x.id === Number(canvas.dataset.id));
      if (a) this.drawThumb(canvas, a);
    }
  }

  private labelOf(id: number | null): { name: string; color: string } | undefined {
    return this.project?.labels.find((l) => l.id === id);
  }

  private author(id: number | null): string {
    if (id === null) return "the model";
    return this.members.find((m) => m.user === id)?.username ?? `user ${id}`;
  }

  private filterBar(): TemplateResult {
    const f = this.filters;
    const num = (e: Event): number | "" => {
      const v = (e.target as HTMLSelectElement).value;
      return v ? Number(v) : "";
    };
    return html`<div class="filters" role="group" aria-label="Filters">
      <label>State <select @change=${(e: Event) => { this.setFilter({ review_state: (e.target as HTMLSelectElement).value as ReviewState }); }}>
        ${STATES.map(([s, name]) => html`<option value=${s} ?selected=${s === f.review_state}>${name}</option>`)}
      </select></label>
      <label>Annotator <select @change=${(e: Event) => { this.setFilter({ author: num(e) }); }}>
        <option value="" ?selected=${f.author === ""}>anyone</option>
        ${this.members.map((m) => html`<option value=${m.user} ?selected=${m.user === f.author}>${m.username}</option>`)}
      </select></label>
      <label>Label <select @change=${(e: Event) => { this.setFilter({ label: num(e) }); }}>
        <option value="" ?selected=${f.label === ""}>any</option>
        ${(this.project?.labels ?? []).map((l) => html`<option value=${l.id} ?selected=${l.id === f.label}>${l.name}</option>`)}
      </select></label>
      <label>Image <select @change=${(e: Event) => { this.setFilter({ image: num(e) }); }}>
        <option value="" ?selected=${f.image === ""}>any</option>
        ${this.imageList.map((i) => html`<option value=${i.id} ?selected=${i.id === f.image}>${i.original_name}</option>`)}
      </select></label>
    </div>`;
  }

  private tile(a: Annotation): TemplateResult {
    const on = this.selected.has(a.id);
    const label = this.labelOf(a.label)?.name ?? "no label";
    return html`<li class="tile ${on ? "on" : ""}" data-testid="proposal" data-id=${a.id}>
      <label class="pick"><input type="checkbox" .checked=${on} aria-label="Select annotation ${a.id}"
        @change=${(e: Event) => { if ((e.target as HTMLInputElement).checked) this.selected.add(a.id); else this.selected.delete(a.id); this.requestUpdate(); }} /></label>
      <a href="/projects/${this.projectId}/images/${a.image}" aria-label="Open the image of annotation ${a.id}"><canvas class="thumb" data-id=${a.id}></canvas></a>
      <span class="small">#${a.id} · ${label} · by ${this.author(a.author)}${a.predicted_iou !== null ? ` · IoU ${a.predicted_iou.toFixed(2)}` : ""}</span>
      ${a.review_state === "rejected" ? html`<span class="small rejection">Rejected: ${a.review_reason || "no reason given"}</span>` : nothing}
      <div class="row">
        ${a.review_state !== "accepted" ? html`<button class="primary" aria-label="Accept annotation ${a.id}" ?disabled=${this.busy} @click=${() => void this.review([a.id], "accepted")}>Accept</button>` : nothing}
        ${a.review_state !== "rejected" ? html`<button aria-label="Reject annotation ${a.id}" ?disabled=${this.busy} @click=${() => { this.openReject([a.id]); }}>Reject…</button>` : nothing}
      </div>
    </li>`;
  }

  override render(): TemplateResult {
    const ids = this.items.map((a) => a.id);
    const chosen = [...this.selected];
    const state = this.filters.review_state;
    return html`<main class="page">
      ${projectNav(this.projectId, this.project?.name, "review")}
      <div class="toolbar">
        <h1>Review</h1>
        <span class="small muted" role="status">${this.loading ? "Loading…" : `${this.count} shown`}</span>
        <span class="spacer"></span>
        <label class="small"><input type="checkbox" data-testid="select-all" .checked=${ids.length > 0 && chosen.length === ids.length}
          @change=${(e: Event) => { this.selected = (e.target as HTMLInputElement).checked ? new Set(ids) : new Set(); this.requestUpdate(); }} /> Select all</label>
        ${state !== "accepted"
          ? html`<button class="primary" aria-keyshortcuts="A" ?disabled=${this.busy || chosen.length === 0} @click=${() => void this.review(chosen, "accepted")}>Accept selected (${chosen.length}) <kbd>A</kbd></button>`
          : nothing}
        ${state !== "rejected"
          ? html`<button aria-keyshortcuts="R" ?disabled=${this.busy || chosen.length === 0} @click=${() => { this.openReject(chosen); }}>Reject selected (${chosen.length})… <kbd>R</kbd></button>`
          : nothing}
      </div>
      ${this.filterBar()}
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${!this.loading && this.items.length === 0 ? html`<p class="muted" data-testid="review-empty">Nothing here with these filters. Annotators' work (with the review policy on) and “Segment everything” proposals land pending review.</p>` : nothing}
      <ul class="grid review-grid" aria-label="Annotations">${this.items.map((a) => this.tile(a))}</ul>
      ${this.count > this.items.length ? html`<p class="small muted">Showing the first ${this.items.length} of ${this.count}: narrow the filters, or review these first.</p>` : nothing}
      ${this.rejecting
        ? html`<reject-dialog .projectId=${this.projectId} .count=${this.rejecting.length}
            @reject=${(e: CustomEvent<string>) => void this.review(this.rejecting ?? [], "rejected", e.detail)}
            @close=${() => { this.rejecting = null; this.requestUpdate(); }}></reject-dialog>`
        : nothing}
    </main>`;
  }
}
customElements.define("review-page", ReviewPage);
