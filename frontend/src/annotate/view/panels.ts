/** The workspace's templates: side panel, notices (an overlay on the stage, so they never
 * move the canvas), help and conflict dialogs. Every button has an accessible name and
 * shows its key (`<kbd>`, `aria-keyshortcuts`) from the one keymap in `core/keys.ts`. */
import { html, nothing, type TemplateResult } from "lit";
import { styleMap } from "lit/directives/style-map.js";
import type { ConnectionState } from "../../realtime/socket";
import type { PresenceUser } from "../../api/events.gen";
import type { ImageItem, Label, Project } from "../../api/types";
import { config } from "../../config";
import { maskArea, maskIoU } from "../../sam/masks";
import type { EmbeddingMachine } from "../core/embedding";
import { BINDINGS, HELP_ROWS, type Command } from "../core/keys";
import type { Conflict } from "../core/saver";
import { iouScore, type PromptSession } from "../core/session";
import type { AnnotationStore } from "../core/store";

export type Tool = "sam" | "brush" | "eraser";
const TOOLS: [Tool, string, Command][] = [
  ["sam", "SAM", "tool-sam"],
  ["brush", "Brush", "tool-brush"],
  ["eraser", "Eraser", "tool-eraser"],
];
const STATUSES = ["new", "in_progress", "done", "reviewed"];

/** What the templates read from the workspace and call back into it. */
export interface WorkspaceModel {
  projectId: number;
  project: Project | null;
  image: ImageItem | null;
  position: { index: number; total: number };
  connection: ConnectionState;
  presence: PresenceUser[];
  tool: Tool;
  brushRadius: number;
  labelId: number | null;
  opacity: number;
  polygonView: boolean;
  tolerance: number;
  saving: boolean;
  notice: string;
  error: string;
  session: PromptSession;
  store: AnnotationStore;
  embedding: EmbeddingMachine;
  currentIou: number | null;
  hasCurrent: boolean;
  run(command: Command): void;
  set(change: Partial<Pick<WorkspaceModel, "tool" | "brushRadius" | "labelId" | "opacity" | "polygonView" | "tolerance" | "notice" | "error">>): void;
  addLabel(form: HTMLFormElement): void;
  setImageStatus(status: string): void;
  select(id: number): void;
  relabel(id: number, label: number | null): void;
  editAnnotation(id: number, refine: boolean): void;
  deleteAnnotation(id: number): void;
  reloadModel(): void;
  colorOf(label: number | null): string;
}

/** A button that runs a command and shows its key. */
function commandButton(w: WorkspaceModel, command: Command, text: string, options: { disabled?: boolean; cls?: string; testid?: string } = {}): TemplateResult {
  const b = BINDINGS[command];
  return html`<button class=${options.cls ?? ""} data-testid=${options.testid ?? command} ?disabled=${options.disabled ?? false}
    aria-keyshortcuts=${b.aria} title="${text} (${b.label})" @click=${() => { w.run(command); }}>${text} <kbd>${b.label}</kbd></button>`;
}

function value(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

function labelsSection(w: WorkspaceModel, labels: Label[]): TemplateResult {
  const manager = w.project?.role === "owner" || w.project?.role === "manager";
  return html`<section aria-label="Label">
    <h3>Label <kbd title="next label">${BINDINGS["next-label"].label}</kbd></h3>
    <div class="labels" role="group" aria-label="Labels">
      ${labels.map((l) => html`<button class="label ${l.id === w.labelId ? "on" : ""}" aria-pressed=${l.id === w.labelId ? "true" : "false"}
        data-testid="label-${l.name}" @click=${() => { w.set({ labelId: l.id }); }}><span class="swatch" style=${styleMap({ background: l.color })}></span>${l.name}</button>`)}
    </div>
    ${manager
      ? html`<form class="row new-label" @submit=${(e: Event) => { e.preventDefault(); w.addLabel(e.target as HTMLFormElement); }}>
          <input type="text" name="name" placeholder="New label" aria-label="New label name" required maxlength="100" />
          <input type="color" name="color" value="#4f7cff" aria-label="New label colour" />
          <button type="submit">Add label</button>
        </form>`
      : nothing}
    <label class="small">Opacity <kbd>${BINDINGS.opacity.label}</kbd> <input type="range" min="0.1" max="1" step="0.05" .value=${String(w.opacity)} @input=${(e: Event) => { w.set({ opacity: Number(value(e)) }); }} /></label>
  </section>`;
}

function maskSection(w: WorkspaceModel): TemplateResult {
  const s = w.session.state;
  return html`<section aria-label="Mask">
    <h3>Mask</h3>
    ${s.decode && !s.edited
      ? html`<div class="candidates" data-testid="candidates" role="group" aria-label="Candidate masks">
          ${s.decode.candidates.map((c, i) => html`<button class="cand ${i === s.selected ? "on" : ""}" data-testid="candidate-${i + 1}" aria-pressed=${i === s.selected ? "true" : "false"}
            aria-keyshortcuts=${String(i + 1)} aria-label="Candidate ${i + 1}, predicted IoU ${iouScore(c.iou).toFixed(2)}" @click=${() => { w.run(`candidate-${i + 1}` as Command); }}><kbd>${i + 1}</kbd> IoU ${iouScore(c.iou).toFixed(2)}</button>`)}
        </div>`
      : html`<p class="small muted">${s.edited ? "Edited by hand." : "Click an object, or drag a box."}</p>`}
    <div class="row">
      ${commandButton(w, "accept", w.saving ? "Saving…" : s.editing !== null ? "Save changes" : "Accept", { disabled: !w.hasCurrent || w.saving, cls: "primary", testid: "accept" })}
      ${commandButton(w, "clear", "Clear", { disabled: w.session.empty })}
    </div>
    <div class="row">
      ${commandButton(w, "undo", "Undo", { disabled: !w.session.canUndo, testid: "undo" })}
      ${commandButton(w, "redo", "Redo", { disabled: !w.session.canRedo, testid: "redo" })}
    </div>
  </section>`;
}

function annotationList(w: WorkspaceModel, labels: Label[]): TemplateResult {
  const list = w.store.values();
  return html`<section class="grow" aria-label="Annotations">
    <h3>Annotations (${list.length})</h3>
    <ul class="ann-list" data-testid="annotation-list">
      ${list.map(({ data: a }) => html`<li class=${a.id === w.store.selected ? "on" : ""} data-testid="annotation-item" data-id=${a.id}>
        <span class="swatch" style=${styleMap({ background: w.colorOf(a.label) })}></span>
        <button class="link" aria-pressed=${a.id === w.store.selected ? "true" : "false"} aria-label="Select annotation ${a.id}"
          title="${a.source}${a.predicted_iou !== null ? `, predicted IoU ${a.predicted_iou.toFixed(2)}` : ""}, ${a.area} px, v${a.version}" @click=${() => { w.select(a.id); }}>#${a.id}</button>
        <select aria-label="Label of annotation ${a.id}" @change=${(e: Event) => { const v = value(e); w.relabel(a.id, v ? Number(v) : null); }}>
          <option value="" ?selected=${a.label === null}>—</option>
          ${labels.map((l) => html`<option value=${l.id} ?selected=${l.id === a.label}>${l.name}</option>`)}
        </select>
        ${a.review_state !== "accepted" ? html`<span class="small muted">${a.review_state}</span>` : nothing}
        ${a.review_state === "rejected" ? html`<p class="rejection small" data-testid="rejection">Rejected: ${a.review_reason || "no reason given"}</p>` : nothing}
        <span class="spacer"></span>
        <button class="link" title="Edit with brush / eraser (select, then M)" aria-label="Edit annotation ${a.id}" @click=${() => { w.editAnnotation(a.id, false); }}>edit</button>
        <button class="link" title="Refine with clicks (select, then R)" aria-label="Refine annotation ${a.id}" @click=${() => { w.editAnnotation(a.id, true); }}>refine</button>
        <button class="link danger" title="Delete (select, then Delete)" aria-label="Delete annotation ${a.id}" @click=${() => { w.deleteAnnotation(a.id); }}>✕</button>
      </li>`)}
    </ul>
  </section>`;
}

/** The project's model: its name, the server's notice about it (the offline demo model says
 * where a real one comes from: the Models page, never a server command), a switch that waits
 * for a download, and why such a wait ended. In the side panel: it never covers the image. */
function modelSection(w: WorkspaceModel): TemplateResult {
  const e = w.embedding;
  const key = e.modelKeyInUse || (w.project?.default_model_key ?? "");
  const pending = e.pending;
  return html`<section aria-label="Model" data-testid="model-section">
    <h3>Model</h3>
    <p class="small" data-testid="model-in-use">${key || "…"}${e.switching ? " (switching…)" : ""}</p>
    ${e.notice
      ? html`<p class="small" role="note" data-testid="model-notice">${e.notice}
          <a href="/projects/${w.projectId}/models">Open the Models page</a></p>`
      : nothing}
    ${pending
      ? html`<p class="small" role="status" data-testid="model-pending">Switching to ${pending.key} when its download completes${
          pending.percent === null ? "" : ` (${pending.percent.toFixed(0)} %)`
        }; ${key} keeps working until then.</p>`
      : nothing}
    ${e.pendingEnded
      ? html`<p class="small" role="status" data-testid="model-pending-ended">${e.pendingEnded}
          <button class="link" aria-label="Dismiss the model notice" @click=${() => { e.dismissPendingEnded(); }}>✕</button></p>`
      : nothing}
  </section>`;
}

export function sidePanel(w: WorkspaceModel): TemplateResult {
  const labels = w.project?.labels ?? [];
  const { index, total } = w.position;
  const model = w.embedding.model;
  return html`<aside class="side" aria-label="Workspace controls">
    <nav class="crumbs" aria-label="Breadcrumbs"><a href="/projects/${w.projectId}">${w.project?.name ?? "Project"}</a> / <span>${w.image?.original_name ?? "…"}</span></nav>
    <div class="row">
      ${commandButton(w, "previous-image", "Previous", { disabled: index <= 0, testid: "previous-image" })}
      <span class="small muted">${index >= 0 ? `${index + 1} / ${total}` : ""}</span>
      ${commandButton(w, "next-image", "Next", { disabled: index < 0 || index >= total - 1, testid: "next-image" })}
      <span class="spacer"></span>
      <span class="conn conn-${w.connection}" data-testid="connection" role="status">${w.connection === "open" ? "live" : w.connection}</span>
    </div>
    <label class="small">Image status
      <select data-testid="image-status" @change=${(e: Event) => { w.setImageStatus(value(e)); }}>
        ${STATUSES.map((st) => html`<option value=${st} ?selected=${w.image?.status === st}>${st.replace("_", " ")}</option>`)}
      </select>
    </label>
    ${w.image?.assignee === config.user.id && (w.image.status === "new" || w.image.status === "in_progress")
      ? html`<div class="row">${commandButton(w, "done", "Done, next image", { cls: "primary", testid: "done" })}<a href="/projects/${w.projectId}/queue">My queue</a></div>`
      : nothing}
    ${modelSection(w)}
    ${w.presence.length ? html`<p class="presence small" data-testid="presence">Also here: ${w.presence.map((u) => html`<span class="avatar">${u.username}</span>`)}</p>` : nothing}
    <section aria-label="Tool">
      <h3>Tool</h3>
      <div class="seg" role="group" aria-label="Tools">
        ${TOOLS.map(([t, name, command]) => html`<button class=${w.tool === t ? "on" : ""} aria-pressed=${w.tool === t ? "true" : "false"} data-testid="tool-${t}"
          aria-keyshortcuts=${BINDINGS[command].aria} @click=${() => { w.run(command); }}>${name} <kbd>${BINDINGS[command].label}</kbd></button>`)}
      </div>
      ${w.tool !== "sam"
        ? html`<label class="small">Brush ${w.brushRadius}px <kbd>[ ]</kbd> <input type="range" min="1" max="100" .value=${String(w.brushRadius)} @input=${(e: Event) => { w.set({ brushRadius: Number(value(e)) }); }} /></label>`
        : nothing}
    </section>
    ${labelsSection(w, labels)}
    ${maskSection(w)}
    <section aria-label="View">
      <h3>View</h3>
      <label class="small"><input type="checkbox" .checked=${w.polygonView} aria-keyshortcuts="P" @change=${(e: Event) => { w.set({ polygonView: (e.target as HTMLInputElement).checked }); }} data-testid="polygon-toggle" /> Polygons <kbd>P</kbd></label>
      ${w.polygonView
        ? html`<label class="small">Simplify ${w.tolerance.toFixed(1)}px <input type="range" min="0" max="10" step="0.5" data-testid="tolerance" .value=${String(w.tolerance)} @input=${(e: Event) => { w.set({ tolerance: Number(value(e)) }); }} /></label>`
        : nothing}
      <div class="row">
        ${commandButton(w, "fit", "Fit")}
        ${commandButton(w, "segment-everything", "Segment everything", { testid: "segment-everything" })}
        ${commandButton(w, "help", "Shortcuts")}
      </div>
    </section>
    ${annotationList(w, labels)}
    <p class="small muted">${model ? `decoder ${model.info.variant} · ${model.backend}${model.backend === "wasm" ? ` ×${model.threads}` : ""}` : ""}${w.currentIou != null ? ` · predicted IoU ${iouScore(w.currentIou).toFixed(2)}` : ""}</p>
  </aside>`;
}

function statusBanner(w: WorkspaceModel): TemplateResult | typeof nothing {
  const e = w.embedding;
  if (e.modelError)
    return html`<div class="banner error" role="alert">The decoder could not be loaded: ${e.modelError} <button @click=${() => { w.reloadModel(); }}>Retry</button></div>`;
  if (!e.model)
    return html`<div class="banner" role="status" data-testid="model-loading"><span class="spinner"></span>${
      e.switching ? `The project now uses ${e.switching}: loading its decoder…` : "Loading the SAM decoder…"
    }</div>`;
  switch (e.state) {
    case "loading":
      return html`<div class="banner" role="status"><span class="spinner"></span>Loading the image embedding…</div>`;
    case "pending":
      return html`<div class="banner" role="status" data-testid="embedding-pending"><span class="spinner"></span>Computing the image embedding on the server… clicks work as soon as it is ready.</div>`;
    case "failed":
      return html`<div class="banner error" role="alert" data-testid="embedding-failed">Embedding failed: ${e.error}
        <button data-testid="embedding-retry" @click=${() => void e.retry()}>Retry</button></div>`;
    default:
      return nothing;
  }
}

/** Notices over the top of the stage: they cover the image's edge for a moment, but never
 * move the canvas under the pointer. */
export function notices(w: WorkspaceModel): TemplateResult {
  return html`<div class="stage-notices" data-testid="notices">
    ${statusBanner(w)}
    ${w.connection === "reconnecting" ? html`<div class="banner warn" role="status" data-testid="reconnecting">Reconnecting to the live room… your edits still save.</div>` : nothing}
    ${w.error ? html`<div class="banner error" role="alert">${w.error} <button class="link" @click=${() => { w.set({ error: "" }); }}>Dismiss</button></div>` : nothing}
    ${w.notice ? html`<div class="banner info" role="status" data-testid="notice">${w.notice} <button class="link" aria-label="Dismiss notice" @click=${() => { w.set({ notice: "" }); }}>✕</button></div>` : nothing}
  </div>`;
}

export function helpDialog(close: () => void): TemplateResult {
  return html`<div class="overlay" @click=${close}>
    <div class="dialog" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" data-testid="help-overlay">
      <h2>Keyboard shortcuts</h2>
      <table>${HELP_ROWS.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</table>
      <button @click=${close}>Close <kbd>Esc</kbd></button>
    </div>
  </div>`;
}

export function conflictDialog(w: WorkspaceModel, c: Conflict, resolve: (choice: "mine" | "theirs" | "merge") => void): TemplateResult {
  const theirs = w.store.get(c.current.id);
  const mine = c.mineMask;
  const label = w.project?.labels.find((l) => l.id === c.current.label)?.name ?? "none";
  return html`<div class="overlay">
    <div class="dialog" role="dialog" aria-modal="true" aria-label="Conflicting change" data-testid="conflict-dialog">
      <h2>Someone else changed this annotation</h2>
      <p>Their version ${c.current.version} was saved after you started editing
        (label ${label}, ${c.current.area} px${mine ? html`; yours has ${maskArea(mine)} px` : nothing}${
          theirs && mine ? html`, overlap IoU ${maskIoU(theirs.mask, mine).toFixed(2)}` : nothing
        }). Their version is shown on the canvas now.</p>
      <div class="row">
        <button data-testid="conflict-mine" @click=${() => { resolve("mine"); }}>Keep mine</button>
        <button data-testid="conflict-theirs" @click=${() => { resolve("theirs"); }}>Keep theirs</button>
        ${mine ? html`<button data-testid="conflict-merge" @click=${() => { resolve("merge"); }}>Merge (union)</button>` : nothing}
      </div>
    </div>
  </div>`;
}
