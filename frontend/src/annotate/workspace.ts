/** The annotation workspace element: wires keyboard and pointer input, the DOM-free core
 * (prompt session, annotation store, embedding state, viewport, saver), the editing
 * controller and the view (renderer, panels). */
import { LitElement, html, nothing, type TemplateResult } from "lit";
import type { PresenceUser, ServerEvent } from "../api/events.gen";
import { api } from "../api/client";
import { work } from "../api/work";
import type { Annotation, ImageItem, Project } from "../api/types";
import { config } from "../config";
import { ProjectSocket, type ConnectionState } from "../realtime/socket";
import { samEngine } from "../sam/engine";
import type { Size } from "../sam/prompts";
import { UNLABELLED_COLOR } from "../ui/colors";
import { navigate } from "../ui/router";
import "../work/segmentDialog";
import { EmbeddingMachine } from "./core/embedding";
import { CommandController } from "./commands";
import { Saver } from "./core/saver";
import { PromptSession } from "./core/session";
import { AnnotationStore } from "./core/store";
import { Viewport } from "./core/viewport";
import { Editor, type EditorHost } from "./editor";
import { installHooks, type Metrics } from "./hooks";
import { embeddingPorts } from "./ports";
import { conflictDialog, helpDialog, notices, sidePanel, type Tool, type WorkspaceModel } from "./view/panels";
import { PointerInput } from "./view/pointer";
import { StageRenderer } from "./view/renderer";

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class AnnotationWorkspace extends LitElement implements WorkspaceModel, EditorHost {
  static override properties = { projectId: { type: Number }, imageId: { type: Number } };
  projectId = 0;
  imageId = 0;
  project: Project | null = null;
  image: ImageItem | null = null;
  size: Size = { width: 0, height: 0 };
  position = { index: -1, total: 0 };
  connection: ConnectionState = "connecting";
  presence: PresenceUser[] = [];
  tool: Tool = "sam";
  brushRadius = 8;
  labelId: number | null = null;
  opacity = 0.5;
  polygonView = false;
  tolerance = 1;
  notice = "";
  error = "";
  spaceDown = false;
  readonly metrics: Metrics = { latencies: [], decodeTimes: [], runTimes: [], layerPaints: [] };
  readonly session = new PromptSession(samEngine().client);
  readonly store = new AnnotationStore();
  readonly viewport = new Viewport();
  readonly embedding = new EmbeddingMachine(embeddingPorts(() => this.projectId), () => { this.requestUpdate(); });
  private readonly editor = new Editor(this, this.session, this.store, new Saver(api, () => this, this.store), new StageRenderer());
  private readonly pointer = new PointerInput(this.editor, () => this.canvas);
  /** Runs a command: the panels' buttons call it, and the keys go through it. */
  readonly run = new CommandController(this, this.editor).run;
  private neighbours: ImageItem[] = [];
  private img: HTMLImageElement | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private resizeObserver: ResizeObserver | null = null;
  private socket: ProjectSocket | null = null;
  showHelp = false;
  private showSegment = false;
  private drawQueued = false;

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  get keysPaused(): boolean {
    return this.showSegment;
  }

  get saving(): boolean {
    return this.editor.saving;
  }

  get hasCurrent(): boolean {
    return this.session.current(this.size) !== null;
  }

  get currentIou(): number | null {
    return this.session.current(this.size)?.iou ?? null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener("online", this.onOnline);
    installHooks(this, this.metrics, () => this.canvas?.getBoundingClientRect() ?? null);
    void this.load();
  }

  override disconnectedCallback(): void {
    window.removeEventListener("online", this.onOnline);
    this.socket?.close();
    this.resizeObserver?.disconnect();
    this.embedding.close();
    this.editor.close();
    super.disconnectedCallback();
  }

  protected override updated(changed: Map<string, unknown>): void {
    if (changed.has("imageId") && changed.get("imageId") !== undefined) void this.load();
    const canvas = this.querySelector<HTMLCanvasElement>("canvas.stage-canvas");
    if (canvas && canvas !== this.canvas) {
      this.canvas = canvas;
      this.resizeObserver?.disconnect();
      this.resizeObserver = new ResizeObserver(() => { this.fitCanvas(); });
      if (canvas.parentElement) this.resizeObserver.observe(canvas.parentElement);
      this.fitCanvas();
    }
  }

  set(change: Parameters<WorkspaceModel["set"]>[0]): void {
    Object.assign(this, change);
    if ("labelId" in change) this.editor.refreshCurrent();
    this.redraw();
  }

  colorOf(label: number | null): string {
    return this.project?.labels.find((l) => l.id === label)?.color ?? UNLABELLED_COLOR;
  }

  // ------------------------------------------------------------------ loading and events

  private async load(): Promise<void> {
    this.error = "";
    this.store.open(this.imageId);
    this.editor.reset();
    try {
      const known = this.project?.id === this.projectId ? this.project : null;
      const [project, image] = await Promise.all([known ?? api.project(this.projectId), api.image(this.projectId, this.imageId)]);
      // A project kept from the previous image is older than the model events since.
      if (!known) this.embedding.setPending(project.pending_model_key ?? null);
      this.project = project;
      this.image = image;
      this.size = { width: image.width, height: image.height };
      if (!project.labels.some((l) => l.id === this.labelId)) this.labelId = project.labels[0]?.id ?? null;
      this.socket ??= new ProjectSocket(this.projectId, (e) => { this.onEvent(e); }, (state) => {
        this.connection = state;
        this.requestUpdate();
      });
      this.socket.setImage(this.imageId);
      const file = api.imageFileUrl(this.projectId, this.imageId);
      await Promise.all([this.loadImage(file), this.loadAnnotations(), this.embedding.open(image, project.default_model_key)]);
      void this.loadNeighbours();
    } catch (error) {
      this.set({ error: message(error) });
    }
  }

  private loadImage(url: string): Promise<void> {
    return new Promise((resolve) => {
      const img = new Image();
      img.decoding = "async";
      img.onload = () => {
        this.img = img;
        this.size = { width: img.naturalWidth, height: img.naturalHeight };
        this.fitView();
        this.editor.repaintAnnotations();
        resolve();
      };
      img.onerror = () => {
        this.set({ error: "The image could not be loaded." });
        resolve();
      };
      img.src = url;
    });
  }

  private async loadAnnotations(): Promise<void> {
    for (const a of await api.annotations(this.projectId, this.imageId)) this.store.take(a);
    this.editor.repaintAnnotations();
  }

  private async loadNeighbours(): Promise<void> {
    const page = await api.images(this.projectId, { page_size: 500 }).catch(() => null);
    this.neighbours = page?.results ?? [];
    const index = this.neighbours.findIndex((i) => i.id === this.imageId);
    this.position = { index, total: this.neighbours.length };
    // Prefetch the next images' embeddings that are ready (the server pre-encodes them).
    const next = this.neighbours.slice(index + 1, index + 3).filter((i) => i.embedding.status === "ready");
    const refs = next.map((i) => this.embedding.ref(i));
    if (this.embedding.model && refs.length > 0) samEngine().client.prefetch(refs).catch(() => undefined);
    this.requestUpdate();
  }

  private onEvent(event: ServerEvent): void {
    if (this.embedding.apply(event)) return;
    const change = this.store.apply(event);
    if (change.kind === "reload") void this.loadAnnotations();
    const { editing, baseVersion } = this.session.state;
    if (change.kind === "updated" && editing !== null && change.ids.includes(editing) && baseVersion !== null && (this.store.get(editing)?.data.version ?? 0) > baseVersion) {
      this.notice = "A teammate changed the annotation you are editing; saving will ask what to keep.";
    }
    if (change.kind !== "none") this.editor.repaintAnnotations();
    if (event.event === "model.activated") {
      const key = event.payload.model_key;
      if (this.project) this.project = { ...this.project, default_model_key: key, pending_model_key: null };
      // The prompts and candidates belong to the old model's embedding.
      if (this.embedding.switchModel(key)) this.editor.reset();
      this.redraw();
    } else if (event.event === "presence") {
      this.presence = event.payload.users.filter((u) => u.image === this.imageId && u.id !== config.user.id);
      this.requestUpdate();
    } else if (event.event === "job.progress" && event.payload.kind === "segment" && event.payload.image === this.imageId) {
      const { state, progress, annotations, error, summary } = event.payload;
      // The server's line: the count it kept, and what to try when it kept none.
      const done = `Segment everything: ${summary}${annotations > 0 ? " Review them on the review page." : ""}`;
      const running = `Segmenting everything… ${Math.round(progress * 100)}%`;
      this.set({ notice: state === "done" ? done : state === "failed" ? `Segment everything failed: ${error}` : running });
    }
  }

  // ------------------------------------------------------------------ view

  private fitCanvas(): void {
    const canvas = this.canvas;
    const stage = canvas?.parentElement;
    if (!canvas || !stage) return;
    const dpr = window.devicePixelRatio || 1;
    const rect = stage.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width * dpr));
    canvas.height = Math.max(1, Math.round(rect.height * dpr));
    canvas.style.width = `${rect.width}px`;
    canvas.style.height = `${rect.height}px`;
    if (this.viewport.pristine) this.fitView();
    this.redraw();
  }

  fitView(): void {
    const canvas = this.canvas;
    if (!canvas) return;
    this.viewport.fit({ width: canvas.clientWidth || canvas.width, height: canvas.clientHeight || canvas.height }, this.size);
    this.redraw();
  }

  /** Update the panels, and draw the stage in the next frame. */
  redraw(): void {
    this.requestUpdate();
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      if (this.canvas) this.editor.draw(this.canvas, this.scene());
      if (this.editor.pendingLatency !== null) {
        this.metrics.latencies.push(performance.now() - this.editor.pendingLatency);
        this.editor.pendingLatency = null;
      }
    });
  }

  private scene(): Parameters<StageRenderer["draw"]>[1] {
    const s = this.session.state;
    const selected = this.store.selected;
    const shown = this.store.values().filter((a) =>
      this.polygonView ? !(a.data.id === s.editing && s.edited) : a.data.id === selected && a.data.id !== s.editing,
    );
    const outlines = shown.map((a) => ({
      rings: (a.data.id === selected ? this.pointer.rings : null) ?? this.store.polygons(a, this.size, this.tolerance),
      color: this.colorOf(a.data.label),
      selected: a.data.id === selected,
    }));
    const cursor = this.pointer.cursor;
    const brush = this.tool !== "sam" && cursor ? { at: cursor, radius: this.brushRadius, erase: this.tool === "eraser" } : null;
    return {
      image: this.img, size: this.size, viewport: this.viewport, opacity: this.opacity, showCurrent: this.hasCurrent,
      showPreview: this.editor.showPreview, outlines, polygonView: this.polygonView, box: this.pointer.box ?? s.box, points: s.points, brush,
    };
  }

  // ------------------------------------------------------------------ actions (WorkspaceModel)

  /** The server moves a `new` image to `in progress` inside the create; this mirrors it. */
  saved(annotation: Annotation): void {
    if (this.image?.status !== "new" || annotation.image !== this.imageId) return;
    this.image = { ...this.image, status: "in_progress" };
  }

  select(id: number): void {
    this.store.selected = id;
    this.redraw();
  }

  relabel(id: number, label: number | null): void {
    void this.editor.relabel(id, label);
  }

  editAnnotation(id: number, refine: boolean): void {
    void this.editor.startEditing(id, refine);
  }

  deleteAnnotation(id: number): void {
    void this.editor.remove(id);
  }

  reloadModel(): void {
    if (this.image && this.project) void this.embedding.open(this.image, this.project.default_model_key);
  }

  addLabel(form: HTMLFormElement): void {
    const field = (key: string): string => (form.elements.namedItem(key) as HTMLInputElement | null)?.value ?? "";
    const name = field("name").trim();
    const project = this.project;
    if (!name || !project) return;
    api.createLabel(this.projectId, name, field("color") || "#4f7cff").then(
      (label) => {
        this.project = { ...project, labels: [...project.labels, label] };
        form.reset();
        this.set({ labelId: label.id });
      },
      (error: unknown) => { this.set({ error: `Could not add the label: ${message(error)}` }); },
    );
  }

  setImageStatus(status: string): void {
    api.updateImage(this.projectId, this.imageId, { status: status }).then(
      (image) => {
        this.image = image;
        this.set({ notice: `Image marked ${status.replace("_", " ")}.` });
      },
      (error: unknown) => { this.set({ error: `Could not change the status: ${message(error)}` }); },
    );
  }

  go(delta: number): void {
    const target = this.neighbours[this.position.index + delta];
    if (target) navigate(`/projects/${this.projectId}/images/${target.id}`);
  }

  segmentEverything(): void {
    this.showSegment = true;
    this.requestUpdate();
  }

  /** Done with this image: the server moves it on; open the next one of my queue. */
  markDone(): void {
    work.queueDone(this.projectId, this.imageId).then(
      ({ next }) => { navigate(`/projects/${this.projectId}/${next ? `images/${next.id}` : "queue"}`); },
      (error: unknown) => { this.set({ error: `Could not mark the image done: ${message(error)}` }); },
    );
  }

  private readonly onOnline = (): void => {
    if (!this.editor.saveWhenOnline) return;
    this.editor.saveWhenOnline = false;
    void this.editor.accept(this.labelId);
  };

  override render(): TemplateResult {
    const p = this.pointer;
    const resolve = (choice: "mine" | "theirs" | "merge"): void => void this.editor.resolveConflict(choice).then(() => { this.redraw(); });
    return html`<div class="workspace">
      ${sidePanel(this)}
      <div class="stage-wrap">
        <div class="stage" data-testid="stage">
          <canvas class="stage-canvas tool-${this.tool}" data-testid="canvas" role="img" aria-label="Image to annotate: click an object, drag a box"
            @pointerdown=${p.down} @pointermove=${p.move} @pointerup=${p.up} @pointerleave=${p.leave}
            @wheel=${p.wheel} @contextmenu=${(e: Event) => { e.preventDefault(); }}></canvas>
        </div>
        ${notices(this)}
      </div>
      ${this.showHelp ? helpDialog(() => { this.run("help"); }) : nothing}
      ${this.showSegment ? html`<segment-dialog .projectId=${this.projectId} .imageIds=${[this.imageId]} @close=${() => { this.showSegment = false; this.requestUpdate(); }}></segment-dialog>` : nothing}
      ${this.editor.conflict ? conflictDialog(this, this.editor.conflict, resolve) : nothing}
    </div>`;
  }
}

customElements.define("annotation-workspace", AnnotationWorkspace);
