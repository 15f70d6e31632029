import { LitElement, html, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { Project } from "../api/types";

export class ProjectsPage extends LitElement {
  private projects: Project[] | null = null;
  private error = "";

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      this.projects = (await api.projects()).results;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.requestUpdate();
  }

  override render(): TemplateResult {
    return html`<main class="page">
      <h1>Projects</h1>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : null}
      ${this.projects === null && !this.error ? html`<p class="muted">Loading…</p>` : null}
      ${this.projects?.length === 0 ? html`<p class="muted">No projects yet: ask a manager to add you.</p>` : null}
      <ul class="cards">
        ${(this.projects ?? []).map(
          (p) => html`<li class="card">
            <a href="/projects/${p.id}" data-testid="project-link">${p.name}</a>
            <p class="muted">${p.description}</p>
            <p class="small">Role: ${p.role ?? "—"} · model ${p.default_model_key} · ${p.labels.length} labels</p>
          </li>`,
        )}
      </ul>
    </main>`;
  }
}
customElements.define("projects-page", ProjectsPage);
