/** "New project": a button and its modal dialog (name, description, labels with colours, the
 * model among those on this server, the review policy). The server's validation errors are
 * shown next to their fields; on success the dialog sends `created` with the project. */
import { LitElement, html, nothing, type TemplateResult } from "lit";
import { ApiError, api } from "../api/client";
import type { Project, RegistryModel, ReviewPolicy } from "../api/types";
import { fieldError } from "./fieldError";
import { formErrors, nextLabelColor, type FormErrors } from "./forms";
import { modelStateText } from "./modelState";

interface LabelRow {
  name: string;
  color: string;
}

const NO_ERRORS: FormErrors = { general: "", fields: new Map() };

export class NewProjectDialog extends LitElement {
  private name = "";
  private description = "";
  private labels: LabelRow[] = [];
  private model = "";
  private reviewPolicy: ReviewPolicy = "proposed";
  private models: RegistryModel[] = [];
  private errors: FormErrors = NO_ERRORS;
  private busy = false;

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  private get dialog(): HTMLDialogElement | null {
    return this.querySelector("dialog");
  }

  private async open(): Promise<void> {
    this.name = "";
    this.description = "";
    this.labels = [{ name: "", color: nextLabelColor([]) }];
    this.reviewPolicy = "proposed";
    this.errors = NO_ERRORS;
    this.requestUpdate();
    await this.updateComplete;
    this.dialog?.showModal();
    try {
      const models = await api.models();
      this.models = models.results;
      const present = this.models.filter((m) => m.state === "present").map((m) => m.key);
      const preferred = models.default_model !== "auto" && present.includes(models.default_model);
      this.model = preferred ? models.default_model : (present.find((k) => k !== "sam_tiny") ?? present[0] ?? "");
    } catch (error) {
      this.errors = { general: `Could not list the models: ${String(error)}`, fields: new Map() };
    }
    this.requestUpdate();
  }

  private close(): void {
    this.dialog?.close();
  }

  private addLabel(): void {
    this.labels = [...this.labels, { name: "", color: nextLabelColor(this.labels.map((l) => l.color)) }];
    this.requestUpdate();
  }

  private removeLabel(index: number): void {
    this.labels = this.labels.filter((_, i) => i !== index);
    this.requestUpdate();
  }

  private setLabel(index: number, change: Partial<LabelRow>): void {
    this.labels = this.labels.map((row, i) => (i === index ? { ...row, ...change } : row));
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    this.busy = true;
    this.errors = NO_ERRORS;
    this.requestUpdate();
    try {
      const project: Project = await api.createProject({
        name: this.name,
        description: this.description,
        labels: this.labels.filter((l) => l.name.trim() !== ""),
        review_policy: this.reviewPolicy,
        ...(this.model ? { default_model_key: this.model } : {}),
      });
      this.close();
      this.dispatchEvent(new CustomEvent<Project>("created", { detail: project, bubbles: true }));
    } catch (error) {
      this.errors =
        error instanceof ApiError
          ? formErrors(error.status, error.body, error.message)
          : { general: String(error), fields: new Map() };
    }
    this.busy = false;
    this.requestUpdate();
  }

  private renderLabels(): TemplateResult {
    return html`<fieldset>
      <legend>Labels</legend>
      <ul class="label-rows">
        ${this.labels.map(
          (row, i) => html`<li>
            <input type="text" aria-label="Label ${i + 1} name" placeholder="name" maxlength="100"
              .value=${row.name} aria-invalid=${this.errors.fields.has(`labels.${i}.name`) ? "true" : "false"}
              @input=${(e: Event) => { this.setLabel(i, { name: (e.target as HTMLInputElement).value }); }} />
            <input type="color" aria-label="Label ${i + 1} colour" .value=${row.color}
              @input=${(e: Event) => { this.setLabel(i, { color: (e.target as HTMLInputElement).value }); }} />
            <button type="button" class="link danger" aria-label="Remove label ${i + 1}" @click=${() => { this.removeLabel(i); }}>Remove</button>
            ${fieldError(this.errors, `labels.${i}.name`, `label-${i}-name-error`)}
            ${fieldError(this.errors, `labels.${i}.color`, `label-${i}-color-error`)}
          </li>`,
        )}
      </ul>
      <button type="button" @click=${() => { this.addLabel(); }}>Add label</button>
      ${fieldError(this.errors, "labels", "labels-error")}
    </fieldset>`;
  }

  private renderModel(): TemplateResult {
    return html`<label for="new-project-model">Model</label>
      <select id="new-project-model" .value=${this.model}
        @change=${(e: Event) => (this.model = (e.target as HTMLSelectElement).value)}>
        ${this.models.map(
          (m) => html`<option value=${m.key} ?disabled=${m.state !== "present"} ?selected=${m.key === this.model}>
            ${m.title}${m.state === "present" ? "" : ` — ${modelStateText(m)}`}</option>`,
        )}
      </select>
      ${fieldError(this.errors, "default_model_key", "model-error")}`;
  }

  private renderDialog(): TemplateResult {
    return html`<dialog class="dialog" aria-labelledby="new-project-title">
      <form @submit=${(e: SubmitEvent) => void this.submit(e)}>
        <h2 id="new-project-title">New project</h2>
        ${this.errors.general ? html`<p class="error" role="alert">${this.errors.general}</p>` : nothing}
        <div class="form-grid">
          <label for="new-project-name">Name</label>
          <input id="new-project-name" type="text" required maxlength="200" .value=${this.name}
            aria-invalid=${this.errors.fields.has("name") ? "true" : "false"}
            @input=${(e: Event) => (this.name = (e.target as HTMLInputElement).value)} />
          ${fieldError(this.errors, "name", "name-error")}
          <label for="new-project-description">Description</label>
          <textarea id="new-project-description" rows="2" .value=${this.description}
            @input=${(e: Event) => (this.description = (e.target as HTMLTextAreaElement).value)}></textarea>
          ${fieldError(this.errors, "description", "description-error")}
          ${this.renderModel()}
        </div>
        ${this.renderLabels()}
        <fieldset>
          <legend>Annotators' manual work lands</legend>
          ${(
            [
              ["proposed", "Pending review"],
              ["accepted", "Accepted"],
            ] as const
          ).map(
            ([value, title]) => html`<label><input type="radio" name="review_policy" .value=${value}
              .checked=${this.reviewPolicy === value} @change=${() => (this.reviewPolicy = value)} /> ${title}</label> `,
          )}
        </fieldset>
        <div class="toolbar">
          <span class="spacer"></span>
          <button type="button" @click=${() => { this.close(); }}>Cancel</button>
          <button type="submit" class="primary" ?disabled=${this.busy}>Create project</button>
        </div>
      </form>
    </dialog>`;
  }

  override render(): TemplateResult {
    return html`<button class="primary" type="button" @click=${() => void this.open()}>New project</button>
      ${this.renderDialog()}`;
  }
}
customElements.define("new-project-dialog", NewProjectDialog);
