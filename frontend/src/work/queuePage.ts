/** <queue-page>: the images assigned to me that are not done, with the reasons reviewers
 * gave for the work they rejected; "Start" opens the first of them. */
import { html, nothing, type TemplateResult } from "lit";
import type { ServerEvent } from "../api/events.gen";
import type { Annotation, Project } from "../api/types";
import { api } from "../api/client";
import { problemsOf, work, type QueueImage } from "../api/work";
import { config } from "../config";
import { ProjectRoomPage } from "../ui/roomPage";
import { navigate } from "../ui/router";
import { projectNav } from "../ui/projectNav";
import { typingInField } from "../ui/shortcuts";

export class QueuePage extends ProjectRoomPage {
  private project: Project | null = null;
  private images: QueueImage[] = [];
  private rejections = new Map<number, Annotation[]>();
  private error = "";
  private reloadTimer: ReturnType<typeof setTimeout> | null = null;

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("keydown", this.onKey);
  }

  override disconnectedCallback(): void {
    window.removeEventListener("keydown", this.onKey);
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    super.disconnectedCallback();
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    if (typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "s" || event.key === "S") void this.start();
  };

  protected override async load(): Promise<void> {
    try {
      this.project ??= await api.project(this.projectId);
      const [images, rejected] = await Promise.all([
        work.queue(this.projectId),
        work.annotations(this.projectId, { author: config.user.id, review_state: "rejected" }),
      ]);
      this.images = images;
      this.rejections = new Map();
      for (const a of rejected.results) this.rejections.set(a.image, [...(this.rejections.get(a.image) ?? []), a]);
      this.error = "";
    } catch (error) {
      this.error = problemsOf(error).join(" ");
    }
    this.loading = false;
    this.requestUpdate();
  }

  /** A review or an assignment changes the queue: reload, at most once a second. */
  protected override onEvent(event: ServerEvent): void {
    if (!event.event.startsWith("annotation") && event.event !== "caught_up") return;
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = null;
      void this.load();
    }, 1000);
  }

  private async start(): Promise<void> {
    try {
      const next = await work.queueNext(this.projectId);
      if (next) navigate(`/projects/${this.projectId}/images/${next.id}`);
      else {
        this.error = "Your queue is empty.";
        this.requestUpdate();
      }
    } catch (error) {
      this.error = problemsOf(error).join(" ");
      this.requestUpdate();
    }
  }

  private labelName(id: number | null): string {
    return this.project?.labels.find((l) => l.id === id)?.name ?? "no label";
  }

  private row(image: QueueImage): TemplateResult {
    const rejected = this.rejections.get(image.id) ?? [];
    return html`<li class="queue-item" data-testid="queue-item">
      <a href="/projects/${this.projectId}/images/${image.id}">${image.original_name}</a>
      <span class="status status-${image.status}">${image.status.replace("_", " ")}</span>
      ${rejected.length
        ? html`<ul class="rejections" aria-label="Rejected work on ${image.original_name}">
            ${rejected.map((a) => html`<li class="small"><strong>Rejected</strong> #${a.id} (${this.labelName(a.label)}): ${a.review_reason || "no reason given"}</li>`)}
          </ul>`
        : nothing}
    </li>`;
  }

  override render(): TemplateResult {
    const p = this.project;
    return html`<main class="page">
      ${projectNav(this.projectId, p?.name, "queue")}
      <div class="toolbar">
        <h1>My queue</h1>
        <span class="small muted" role="status">${this.loading ? "Loading…" : `${this.images.length} image${this.images.length === 1 ? "" : "s"} to do`}</span>
        <span class="spacer"></span>
        <button class="primary" aria-keyshortcuts="S" title="Open the next image (S)" ?disabled=${this.images.length === 0} @click=${() => void this.start()}>Start <kbd>S</kbd></button>
      </div>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${!this.loading && this.images.length === 0 ? html`<p class="muted">Nothing assigned to you is left to do.</p>` : nothing}
      <ol class="queue" aria-label="Assigned images">${this.images.map((i) => this.row(i))}</ol>
      <p class="small muted">Images with rejected work come first; mark an image done in the workspace (<kbd>Shift+D</kbd>) to move on.</p>
    </main>`;
  }
}
customElements.define("queue-page", QueuePage);
