/** Settings page of a project: name, description and review policy; labels (with their
 * annotation counts); the model (present models only, a pending switch shown); the defaults of
 * segment everything and exports within the bounds the server reports; archive and delete
 * (typing the project's name). Managers and owners change; deleting is the owners'. */
import { html, nothing, type TemplateResult } from "lit";
import { ApiError, api } from "../api/client";
import type { ProjectDetail, ProjectUpdate, RegistryModel, ReviewPolicy } from "../api/types";
import { messageOf } from "../api/work";
import { fieldError } from "./fieldError";
import { boundAttributes, boundProblem, formErrors, type FormErrors } from "./forms";
import "./labelsEditor";
import { baseModelKey, modelStateText } from "./modelState";
import { LoadingPage } from "./page";
import { projectNav } from "./projectNav";
import { navigate } from "./router";

const NO_ERRORS: FormErrors = { general: "", fields: new Map() };
const SETTING_TITLES: Record<string, string> = {
  auto_points_per_side: "Points per side",
  auto_pred_iou_thresh: "Predicted-IoU threshold",
  auto_stability_score_thresh: "Stability score threshold",
  auto_min_mask_region_area: "Minimum mask region area (px)",
  export_polygon_tolerance: "Export polygon tolerance (px)",
};
const MANAGERS = new Set(["owner", "manager"]);

export class ProjectSettingsPage extends LoadingPage {
  projectId = 0;
  static override properties = { projectId: { type: Number } };

  private project: ProjectDetail | null = null;
  private models: RegistryModel[] = [];
  private draft: ProjectUpdate = {};
  private settingsDraft = new Map<string, string>();
  private model = "";
  private deleteConfirm = "";
  private confirmArchive = false;
  private errors: FormErrors = NO_ERRORS;
  private notice = "";
  private busy = false;

  private get canManage(): boolean {
    return MANAGERS.has(this.project?.role ?? "");
  }

  protected override async load(): Promise<void> {
    try {
      const [project, models] = await Promise.all([api.projectDetail(this.projectId), api.models()]);
      this.project = project;
      this.models = models.results;
      this.model = baseModelKey(project.default_model_key);
    } catch (error) {
      this.errors = { general: messageOf(error), fields: new Map() };
    }
    this.requestUpdate();
  }

  /** PATCH the project; the server's errors go next to their fields. */
  private async save(data: ProjectUpdate, done: string): Promise<boolean> {
    this.busy = true;
    this.errors = NO_ERRORS;
    this.notice = "";
    this.requestUpdate();
    let ok = false;
    try {
      this.project = await api.updateProject(this.projectId, data);
      this.notice = done;
      ok = true;
    } catch (error) {
      this.errors =
        error instanceof ApiError ? formErrors(error.status, error.body, error.message) : { general: String(error), fields: new Map() };
    }
    this.busy = false;
    this.requestUpdate();
    return ok;
  }

  private async saveGeneral(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    if (await this.save(this.draft, "Project saved.")) this.draft = {};
  }

  private async saveSettings(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const bounds = this.project?.settings_bounds ?? {};
    const fields = new Map<string, string>();
    const settings: Record<string, number> = {};
    for (const [key, raw] of this.settingsDraft) {
      const bound = bounds[key];
      const problem = bound ? boundProblem(bound, raw) : null;
      if (problem) fields.set(`settings.${key}`, problem);
      else if (raw.trim() !== "") settings[key] = Number(raw);
    }
    if (fields.size) {
      this.errors = { general: "Please correct the marked fields.", fields };
      this.requestUpdate();
      return;
    }
    if (await this.save({ settings }, "Defaults saved.")) this.settingsDraft.clear();
  }

  private async archive(): Promise<void> {
    this.confirmArchive = false;
    await this.save({ archived: true }, "Project archived.");
  }

  private async deleteProject(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    try {
      await api.deleteProject(this.projectId);
      navigate("/");
    } catch (error) {
      this.errors = { general: messageOf(error), fields: new Map() };
      this.requestUpdate();
    }
  }

  private renderGeneral(p: ProjectDetail): TemplateResult {
    const off = !this.canManage;
    const policy = this.draft.review_policy ?? p.review_policy;
    return html`<section class="panel" aria-labelledby="general-title">
      <h2 id="general-title">General</h2>
      <form @submit=${(e: SubmitEvent) => void this.saveGeneral(e)}>
        <div class="form-grid">
          <label for="settings-name">Name</label>
          <input id="settings-name" type="text" maxlength="200" required .value=${p.name} ?disabled=${off}
            @input=${(e: Event) => (this.draft.name = (e.target as HTMLInputElement).value)} />
          ${fieldError(this.errors, "name", "settings-name-error")}
          <label for="settings-description">Description</label>
          <textarea id="settings-description" rows="3" .value=${p.description} ?disabled=${off}
            @input=${(e: Event) => (this.draft.description = (e.target as HTMLTextAreaElement).value)}></textarea>
          ${fieldError(this.errors, "description", "settings-description-error")}
        </div>
        <fieldset ?disabled=${off}>
          <legend>Annotators' manual work lands</legend>
          ${(
            [
              ["proposed", "Pending review"],
              ["accepted", "Accepted"],
            ] as [ReviewPolicy, string][]
          ).map(
            ([value, title]) => html`<label><input type="radio" name="settings-review-policy" .checked=${policy === value}
              @change=${() => { this.draft.review_policy = value; this.requestUpdate(); }} /> ${title}</label> `,
          )}
        </fieldset>
        ${off ? nothing : html`<p><button type="submit" class="primary" ?disabled=${this.busy}>Save changes</button></p>`}
      </form>
    </section>`;
  }

  private renderModel(p: ProjectDetail): TemplateResult {
    const current = baseModelKey(p.default_model_key);
    return html`<section class="panel" aria-labelledby="model-title">
      <h2 id="model-title">Model</h2>
      <p class="small">In use: <strong>${p.default_model_key}</strong>.
        <a href="/projects/${p.id}/models">Models page</a> (downloads, fine-tuned versions).</p>
      ${p.pending_model_key
        ? html`<p class="small" role="status" data-testid="pending-model">Switching to ${p.pending_model_key} when its
            download completes; ${current} stays in use until then.</p>`
        : nothing}
      <div class="row">
        <label for="settings-model">Model</label>
        <select id="settings-model" ?disabled=${!this.canManage}
          @change=${(e: Event) => { this.model = (e.target as HTMLSelectElement).value; this.requestUpdate(); }}>
          ${this.models.map(
            (m) => html`<option value=${m.key} ?disabled=${m.state !== "present"} ?selected=${m.key === this.model}>
              ${m.title}${m.state === "present" ? "" : ` — ${modelStateText(m)}`}</option>`,
          )}
        </select>
        ${this.canManage
          ? html`<button ?disabled=${this.busy || this.model === current}
              @click=${() => void this.save({ default_model_key: this.model }, `The project now uses ${this.model}.`)}>Use this model</button>`
          : nothing}
      </div>
      ${fieldError(this.errors, "default_model_key", "settings-model-error")}
    </section>`;
  }

  private renderDefaults(p: ProjectDetail): TemplateResult {
    const model = this.models.find((m) => m.key === baseModelKey(p.default_model_key));
    const stored = (p.settings ?? {}) as Record<string, unknown>;
    return html`<section class="panel" aria-labelledby="defaults-title">
      <h2 id="defaults-title">Segment everything and export defaults</h2>
      <p class="small muted">Empty fields follow the model's defaults (shown greyed).</p>
      <!-- novalidate: the bounds are checked by saveSettings, which shows each message at its field -->
      <form novalidate @submit=${(e: SubmitEvent) => void this.saveSettings(e)}>
        <div class="form-grid">
          ${Object.entries(p.settings_bounds).map(([key, bound]) => {
            const attrs = boundAttributes(bound);
            const value = stored[key];
            const fallback = model?.automatic_defaults[key.replace(/^auto_/, "")];
            return html`<label for="setting-${key}">${SETTING_TITLES[key] ?? key}</label>
              <span class="row">
              <input id="setting-${key}" type="number" min=${attrs.min} max=${attrs.max} step=${attrs.step}
                ?disabled=${!this.canManage} .value=${typeof value === "number" ? String(value) : ""}
                placeholder=${fallback === undefined ? "" : String(fallback)}
                aria-describedby="setting-${key}-range"
                @input=${(e: Event) => this.settingsDraft.set(key, (e.target as HTMLInputElement).value)} />
              <span class="small muted" id="setting-${key}-range">${attrs.min} to ${attrs.max}</span>
              </span>
              ${fieldError(this.errors, `settings.${key}`, `setting-${key}-error`)}`;
          })}
        </div>
        ${this.canManage ? html`<p><button type="submit" ?disabled=${this.busy}>Save defaults</button></p>` : nothing}
      </form>
    </section>`;
  }

  private renderDanger(p: ProjectDetail): TemplateResult {
    const owner = p.role === "owner";
    return html`<section class="panel" aria-labelledby="danger-title">
      <h2 id="danger-title">Archive or delete</h2>
      <p class="small">${p.archived_at
        ? html`Archived on ${new Date(p.archived_at).toLocaleDateString()}: listed apart on the projects page.`
        : "An archived project stays readable and exportable but takes no new annotations, reviews, uploads or jobs; unarchive it any time."}</p>
      ${p.archived_at
        ? html`<button ?disabled=${this.busy} @click=${() => void this.save({ archived: false }, "Project unarchived.")}>
            Unarchive project</button>`
        : this.confirmArchive
          ? html`<div class="row" role="group" aria-label="Confirm archiving">
              <span>Archive ${p.name}?</span>
              <button class="primary" ?disabled=${this.busy} @click=${() => void this.archive()}>Yes, archive it</button>
              <button @click=${() => { this.confirmArchive = false; this.requestUpdate(); }}>Keep it active</button>
            </div>`
          : html`<button @click=${() => { this.confirmArchive = true; this.requestUpdate(); }}>Archive project</button>`}
      ${owner
        ? html`<form class="row" @submit=${(e: SubmitEvent) => void this.deleteProject(e)}>
            <label for="delete-confirm">Type <strong>${p.name}</strong> to delete the project, its images and annotations for ever</label>
            <input id="delete-confirm" type="text" autocomplete="off" .value=${this.deleteConfirm}
              @input=${(e: Event) => { this.deleteConfirm = (e.target as HTMLInputElement).value; this.requestUpdate(); }} />
            <button type="submit" class="danger" ?disabled=${this.deleteConfirm !== p.name}>Delete project</button>
          </form>`
        : nothing}
    </section>`;
  }

  override render(): TemplateResult {
    const p = this.project;
    return html`<main class="page">
      ${projectNav(this.projectId, p?.name, "settings")}
      <h1>Settings</h1>
      ${this.errors.general ? html`<p class="error" role="alert">${this.errors.general}</p>` : nothing}
      ${this.notice ? html`<p role="status">${this.notice}</p>` : nothing}
      ${p
        ? html`${this.renderGeneral(p)}
            <section class="panel" aria-labelledby="labels-title">
              <h2 id="labels-title">Labels</h2>
              <labels-editor .projectId=${this.projectId} .canManage=${this.canManage}></labels-editor>
            </section>
            ${this.renderModel(p)} ${this.renderDefaults(p)} ${this.canManage ? this.renderDanger(p) : nothing}`
        : html`<p class="muted">Loading…</p>`}
    </main>`;
  }
}
customElements.define("project-settings-page", ProjectSettingsPage);
