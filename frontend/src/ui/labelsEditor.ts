/** The labels of a project with how many annotations each holds: add, rename, recolour and
 * delete (managers and owners). Deleting a label that annotations carry asks what becomes of
 * them: move them to another label, or delete them. */
import { html, nothing, type TemplateResult } from "lit";
import { ApiError, api } from "../api/client";
import type { LabelDeletion, LabelWithCount } from "../api/types";
import { messageOf } from "../api/work";
import { nextLabelColor } from "./forms";
import { ActionPage } from "./page";

interface PendingDeletion {
  label: LabelWithCount;
  count: number;
  mode: LabelDeletion["annotations"];
  target: number | null;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export class LabelsEditor extends ActionPage {
  projectId = 0;
  canManage = false;
  static override properties = { projectId: { type: Number }, canManage: { type: Boolean } };

  private labels: LabelWithCount[] = [];
  private newName = "";
  private newColor = nextLabelColor([]);
  private deletion: PendingDeletion | null = null;

  protected override async load(): Promise<void> {
    try {
      this.labels = (await api.labels(this.projectId)).results;
      this.newColor = nextLabelColor(this.labels.map((l) => l.color));
    } catch (error) {
      this.error = messageOf(error);
    }
    this.requestUpdate();
  }

  private async add(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const name = this.newName.trim();
    if (await this.act(() => api.createLabel(this.projectId, name, this.newColor), `Label ${name} added.`)) {
      this.newName = "";
      this.requestUpdate();
    }
  }

  private patchLabel(label: LabelWithCount, change: { name?: string; color?: string }, done: string): void {
    void this.act(() => api.updateLabel(this.projectId, label.id, change), done);
  }

  private async deleteLabel(label: LabelWithCount): Promise<void> {
    if (label.annotation_count > 0) {
      this.askDeletion(label, label.annotation_count);
      return;
    }
    try {
      await api.deleteLabel(this.projectId, label.id);
      this.notice = `Label ${label.name} deleted.`;
      await this.load();
    } catch (error) {
      // Annotations took the label meanwhile: ask after all.
      const count = error instanceof ApiError ? (error.body as { annotation_count?: number } | null)?.annotation_count : undefined;
      if (count !== undefined) this.askDeletion(label, count);
      else this.error = messageOf(error);
      this.requestUpdate();
    }
  }

  private askDeletion(label: LabelWithCount, count: number): void {
    const target = this.labels.find((l) => l.id !== label.id)?.id ?? null;
    this.deletion = { label, count, mode: target === null ? "delete" : "reassign", target };
    this.requestUpdate();
    void this.updateComplete.then(() => this.querySelector<HTMLDialogElement>("dialog")?.showModal());
  }

  private closeDeletion(): void {
    this.querySelector<HTMLDialogElement>("dialog")?.close();
    this.deletion = null;
    this.requestUpdate();
  }

  private async confirmDeletion(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const d = this.deletion;
    if (!d) return;
    const choice: LabelDeletion =
      d.mode === "reassign" && d.target !== null
        ? { annotations: "reassign", reassign_to: d.target }
        : { annotations: d.mode === "unlabel" ? "unlabel" : "delete" };
    const target = this.labels.find((l) => l.id === d.target)?.name ?? "";
    const outcome = {
      reassign: `its annotations moved to ${target}`,
      unlabel: "its annotations are kept without a label",
      delete: `${plural(d.count, "annotation")} deleted with it`,
    }[choice.annotations];
    const done = `Label ${d.label.name} deleted; ${outcome}.`;
    this.closeDeletion();
    await this.act(() => api.deleteLabel(this.projectId, d.label.id, choice), done);
  }

  private renderDeletion(): TemplateResult {
    const d = this.deletion;
    const others = this.labels.filter((l) => l.id !== d?.label.id);
    return html`<dialog class="dialog" aria-labelledby="label-delete-title" @close=${() => (this.deletion = null)}>
      ${d
        ? html`<form @submit=${(e: SubmitEvent) => void this.confirmDeletion(e)}>
            <h2 id="label-delete-title">Delete label ${d.label.name}?</h2>
            <p>${plural(d.count, "annotation")} carry this label. What should happen to them?</p>
            <fieldset>
              <legend>Its annotations</legend>
              <label><input type="radio" name="label-delete-mode" ?disabled=${others.length === 0}
                .checked=${d.mode === "reassign"} @change=${() => { d.mode = "reassign"; this.requestUpdate(); }} />
                Move them to another label</label>
              <select aria-label="Label that takes them over" ?disabled=${d.mode !== "reassign"}
                @change=${(e: Event) => (d.target = Number((e.target as HTMLSelectElement).value))}>
                ${others.map((l) => html`<option value=${l.id} ?selected=${l.id === d.target}>${l.name}</option>`)}
              </select>
              <br />
              <label><input type="radio" name="label-delete-mode" .checked=${d.mode === "unlabel"}
                @change=${() => { d.mode = "unlabel"; this.requestUpdate(); }} /> Keep them without a label</label>
              <br />
              <label><input type="radio" name="label-delete-mode" .checked=${d.mode === "delete"}
                @change=${() => { d.mode = "delete"; this.requestUpdate(); }} /> Delete them</label>
            </fieldset>
            <div class="toolbar">
              <span class="spacer"></span>
              <button type="button" @click=${() => { this.closeDeletion(); }}>Cancel</button>
              <button type="submit" class="danger">Delete label</button>
            </div>
          </form>`
        : nothing}
    </dialog>`;
  }

  private renderRow(label: LabelWithCount): TemplateResult {
    const off = !this.canManage;
    return html`<li data-testid="label-row">
      <input type="color" aria-label="Colour of label ${label.name}" .value=${label.color} ?disabled=${off}
        @change=${(e: Event) => { this.patchLabel(label, { color: (e.target as HTMLInputElement).value }, `Label ${label.name} recoloured.`); }} />
      <input type="text" aria-label="Name of label ${label.name}" .value=${label.name} maxlength="100" ?disabled=${off}
        @change=${(e: Event) => {
          const name = (e.target as HTMLInputElement).value;
          this.patchLabel(label, { name }, `Label ${label.name} renamed to ${name.trim()}.`);
        }} />
      <span class="small muted" data-testid="label-count">${plural(label.annotation_count, "annotation")}</span>
      ${off
        ? nothing
        : html`<button type="button" class="link danger" aria-label="Delete label ${label.name}"
            @click=${() => void this.deleteLabel(label)}>Delete</button>`}
    </li>`;
  }

  override render(): TemplateResult {
    return html`${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${this.notice ? html`<p class="small" role="status">${this.notice}</p>` : nothing}
      <ul class="label-rows" aria-label="Labels">
        ${this.labels.map((label) => this.renderRow(label))}
      </ul>
      ${this.labels.length === 0 ? html`<p class="muted small">No labels yet.</p>` : nothing}
      ${this.canManage
        ? html`<form class="row" @submit=${(e: SubmitEvent) => void this.add(e)}>
            <input type="text" aria-label="New label name" placeholder="new label" maxlength="100" required
              .value=${this.newName} @input=${(e: Event) => (this.newName = (e.target as HTMLInputElement).value)} />
            <input type="color" aria-label="New label colour" .value=${this.newColor}
              @input=${(e: Event) => (this.newColor = (e.target as HTMLInputElement).value)} />
            <button type="submit">Add label</button>
          </form>`
        : nothing}
      ${this.renderDeletion()}`;
  }
}
customElements.define("labels-editor", LabelsEditor);
