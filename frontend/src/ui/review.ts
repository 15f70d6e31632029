/** Review view: proposals (e.g. from "segment everything") accepted or rejected one by one
 * or in bulk; each shown as its mask over a crop of the image. */
import { html, nothing, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { Annotation, Project, ReviewState } from "../api/types";
import type { ServerEvent } from "../realtime/socket";
import { decodeRle } from "../sam/rle";
import { hexToRgb, paintMask, UNLABELLED_COLOR } from "./colors";
import { projectNav } from "./projectNav";
import { ProjectRoomPage } from "./roomPage";

export class ReviewPage extends ProjectRoomPage {
  private project: Project | null = null;
  private items: Annotation[] = [];
  private selected = new Set<number>();
  private filter: ReviewState = "proposed";
  private error = "";
  private loading = true;
  private busy = false;
  private images = new Map<number, Promise<HTMLImageElement>>();

  protected override onEvent(event: ServerEvent): void {
    if (event.event === "annotation.created" || event.event === "annotation.updated") {
      const a = event.payload;
      const i = this.items.findIndex((x) => x.id === a.id);
      if (a.review_state === this.filter) {
        if (i >= 0) this.items[i] = a;
        else this.items.push(a);
      } else if (i >= 0) {
        this.items.splice(i, 1);
        this.selected.delete(a.id);
      }
      this.requestUpdate();
    } else if (event.event === "annotation.deleted") {
      this.items = this.items.filter((x) => x.id !== event.payload.id);
      this.requestUpdate();
    }
  }

  protected override async load(): Promise<void> {
    this.loading = true;
    this.requestUpdate();
    try {
      this.project ??= await api.project(this.projectId);
      const page = await api.projectAnnotations(this.projectId, { page_size: 200, review_state: this.filter });
      // The server may ignore the filter: apply it here too.
      this.items = page.results.filter((a) => a.review_state === this.filter);
      this.selected.clear();
      this.error = "";
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.loading = false;
    this.requestUpdate();
  }

  private async review(ids: number[], state: ReviewState): Promise<void> {
    if (ids.length === 0) return;
    this.busy = true;
    this.requestUpdate();
    try {
      await api.review(this.projectId, ids, state);
      this.items = this.items.filter((a) => !ids.includes(a.id));
      for (const id of ids) this.selected.delete(id);
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.busy = false;
    this.requestUpdate();
  }

  private image(imageId: number): Promise<HTMLImageElement> {
    let promise = this.images.get(imageId);
    if (!promise) {
      promise = new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error("image failed to load"));
        img.src = api.imageFileUrl(this.projectId, imageId);
      });
      this.images.set(imageId, promise);
    }
    return promise;
  }

  private drawThumb(canvas: HTMLCanvasElement, a: Annotation): void {
    if (canvas.dataset["drawn"] === `${a.id}:${a.version}`) return;
    canvas.dataset["drawn"] = `${a.id}:${a.version}`;
    void this.image(a.image).then((img) => {
      const [h, w] = a.rle.size;
      const [bx = 0, by = 0, bw = w, bh = h] = a.bbox;
      const pad = Math.max(bw, bh) * 0.25 + 4;
      const x0 = Math.max(0, bx - pad);
      const y0 = Math.max(0, by - pad);
      const x1 = Math.min(w, bx + bw + pad);
      const y1 = Math.min(h, by + bh + pad);
      const side = 160;
      const f = side / Math.max(x1 - x0, y1 - y0);
      canvas.width = Math.max(1, Math.round((x1 - x0) * f));
      canvas.height = Math.max(1, Math.round((y1 - y0) * f));
      const ctx = canvas.getContext("2d");
      if (!ctx) return;
      ctx.drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
      const layer = document.createElement("canvas");
      layer.width = w;
      layer.height = h;
      const lctx = layer.getContext("2d");
      if (!lctx) return;
      const data = lctx.createImageData(w, h);
      const color = this.project?.labels.find((l) => l.id === a.label)?.color ?? UNLABELLED_COLOR;
      paintMask(data.data, decodeRle(a.rle), hexToRgb(color));
      lctx.putImageData(data, 0, 0);
      ctx.globalAlpha = 0.5;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(layer, x0, y0, x1 - x0, y1 - y0, 0, 0, canvas.width, canvas.height);
    });
  }

  protected override updated(): void {
    for (const canvas of this.querySelectorAll<HTMLCanvasElement>("canvas.thumb")) {
      const id = Number(canvas.dataset["id"]);
      const a = this.items.find((x) => x.id === id);
      if (a) this.drawThumb(canvas, a);
    }
  }

  override render(): TemplateResult {
    const ids = this.items.map((a) => a.id);
    const chosen = [...this.selected];
    return html`<main class="page">
      ${projectNav(this.projectId, this.project?.name, "review")}
      <div class="toolbar">
        <h1>Review</h1>
        <select data-testid="review-filter" @change=${(e: Event) => { this.filter = (e.target as HTMLSelectElement).value as ReviewState; void this.load(); }}>
          ${(["proposed", "accepted", "rejected"] as ReviewState[]).map((s) => html`<option value=${s} ?selected=${s === this.filter}>${s}</option>`)}
        </select>
        <span class="spacer"></span>
        <label class="small"><input type="checkbox" data-testid="select-all" .checked=${ids.length > 0 && chosen.length === ids.length}
          @change=${(e: Event) => { this.selected = (e.target as HTMLInputElement).checked ? new Set(ids) : new Set(); this.requestUpdate(); }} /> Select all</label>
        <button class="primary" data-testid="bulk-accept" ?disabled=${this.busy || chosen.length === 0} @click=${() => void this.review(chosen, "accepted")}>Accept ${chosen.length || ""}</button>
        <button data-testid="bulk-reject" ?disabled=${this.busy || chosen.length === 0} @click=${() => void this.review(chosen, "rejected")}>Reject ${chosen.length || ""}</button>
      </div>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${this.loading ? html`<p class="muted">Loading…</p>` : nothing}
      ${!this.loading && this.items.length === 0 ? html`<p class="muted" data-testid="review-empty">Nothing ${this.filter} here. Run “Segment everything” on an image to get proposals.</p>` : nothing}
      <ul class="grid review-grid">
        ${this.items.map(
          (a) => html`<li class="tile ${this.selected.has(a.id) ? "on" : ""}" data-testid="proposal" data-id=${a.id}>
            <label class="pick"><input type="checkbox" .checked=${this.selected.has(a.id)}
              @change=${(e: Event) => { if ((e.target as HTMLInputElement).checked) this.selected.add(a.id); else this.selected.delete(a.id); this.requestUpdate(); }} /></label>
            <a href="/projects/${this.projectId}/images/${a.image}"><canvas class="thumb" data-id=${a.id}></canvas></a>
            <span class="small">#${a.id} · ${a.area} px${a.predicted_iou !== null ? ` · IoU ${a.predicted_iou.toFixed(2)}` : ""}</span>
            <div class="row">
              <button class="primary" data-testid="accept-one" ?disabled=${this.busy} @click=${() => void this.review([a.id], "accepted")}>Accept</button>
              <button data-testid="reject-one" ?disabled=${this.busy} @click=${() => void this.review([a.id], "rejected")}>Reject</button>
            </div>
          </li>`,
        )}
      </ul>
    </main>`;
  }
}
customElements.define("review-page", ReviewPage);
