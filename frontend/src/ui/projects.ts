/** Projects page: the signed-in user's pending invitations (accept / decline), "New project",
 * their projects, and the archived ones apart. */
import { html, nothing, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { MyInvitation, Project } from "../api/types";
import { messageOf } from "../api/work";
import "./newProject";
import { LoadingPage } from "./page";
import { navigate } from "./router";

export class ProjectsPage extends LoadingPage {
  private projects: Project[] | null = null;
  private invitations: MyInvitation[] = [];
  private error = "";
  private notice = "";

  protected override async load(): Promise<void> {
    try {
      const [projects, invitations] = await Promise.all([api.projects(), api.myInvitations()]);
      this.projects = projects.results;
      this.invitations = invitations.results;
      this.error = "";
    } catch (error) {
      this.error = messageOf(error);
    }
    this.requestUpdate();
  }

  private async answer(invitation: MyInvitation, accept: boolean): Promise<void> {
    this.error = "";
    try {
      if (accept) await api.acceptInvitation(invitation.id);
      else await api.declineInvitation(invitation.id);
      this.notice = accept
        ? `You joined ${invitation.project.name} as ${invitation.role}.`
        : `You declined the invitation to ${invitation.project.name}.`;
    } catch (error) {
      this.error = messageOf(error);
    }
    await this.load();
  }

  private renderInvitations(): TemplateResult | typeof nothing {
    if (this.invitations.length === 0) return nothing;
    return html`<section class="panel" aria-labelledby="invitations-title">
      <h2 id="invitations-title">Invitations</h2>
      <ul class="label-rows">
        ${this.invitations.map(
          (inv) => html`<li>
            <span><strong>${inv.project.name}</strong> as ${inv.role}
              <span class="small muted">from ${inv.invited_by || "someone"}, until ${new Date(inv.expires_at).toLocaleDateString()}</span></span>
            <button class="primary" aria-label="Accept invitation to ${inv.project.name}"
              @click=${() => void this.answer(inv, true)}>Accept</button>
            <button aria-label="Decline invitation to ${inv.project.name}"
              @click=${() => void this.answer(inv, false)}>Decline</button>
          </li>`,
        )}
      </ul>
    </section>`;
  }

  private renderCards(projects: Project[]): TemplateResult {
    return html`<ul class="cards">
      ${projects.map(
        (p) => html`<li class="card">
          <a href="/projects/${p.id}" data-testid="project-link">${p.name}</a>
          <p class="muted">${p.description}</p>
          <p class="small">Role: ${p.role ?? "—"} · model ${p.default_model_key} · ${p.labels.length} labels</p>
        </li>`,
      )}
    </ul>`;
  }

  override render(): TemplateResult {
    const active = (this.projects ?? []).filter((p) => !p.archived_at);
    const archived = (this.projects ?? []).filter((p) => p.archived_at);
    return html`<main class="page">
      <div class="toolbar">
        <h1>Projects</h1>
        <span class="spacer"></span>
        <new-project-dialog @created=${(e: CustomEvent<Project>) => { navigate(`/projects/${e.detail.id}`); }}></new-project-dialog>
      </div>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${this.notice ? html`<p role="status">${this.notice}</p>` : nothing}
      ${this.renderInvitations()}
      ${this.projects === null && !this.error ? html`<p class="muted">Loading…</p>` : nothing}
      ${this.projects?.length === 0
        ? html`<p class="muted">No projects yet. Create one with <strong>New project</strong>, or accept an
            invitation when a teammate invites you.</p>`
        : nothing}
      ${this.renderCards(active)}
      ${archived.length
        ? html`<section aria-labelledby="archived-title">
            <h2 id="archived-title">Archived</h2>
            ${this.renderCards(archived)}
          </section>`
        : nothing}
    </main>`;
  }
}
customElements.define("projects-page", ProjectsPage);
