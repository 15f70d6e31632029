/** Members page of a project: invite a username or an e-mail address with a role (the answer
 * never says whether the account exists), pending invitations (cancel), members with their
 * role (change, remove) and "Leave project". Managers and owners manage; only owners hand out
 * or take away ownership; the server keeps the last owner. */
import { html, nothing, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { Member, Project, ProjectInvitation, Role } from "../api/types";
import { messageOf } from "../api/work";
import { config } from "../config";
import { ActionPage } from "./page";
import { projectNav } from "./projectNav";
import { navigate } from "./router";

const ROLES: readonly Role[] = ["owner", "manager", "annotator", "reviewer", "viewer"];
const MANAGERS = new Set(["owner", "manager"]);

export class MembersPage extends ActionPage {
  projectId = 0;
  static override properties = { projectId: { type: Number } };

  private project: Project | null = null;
  private members: Member[] = [];
  private invitations: ProjectInvitation[] = [];
  private identifier = "";
  private inviteRole: Role = "annotator";
  private confirmLeave = false;

  private get canManage(): boolean {
    return MANAGERS.has(this.project?.role ?? "");
  }

  private get isOwner(): boolean {
    return this.project?.role === "owner";
  }

  protected override async load(): Promise<void> {
    try {
      this.project = await api.project(this.projectId);
      const [members, invitations] = await Promise.all([
        api.members(this.projectId),
        this.canManage ? api.projectInvitations(this.projectId) : Promise.resolve(null),
      ]);
      this.members = members.results;
      this.invitations = invitations?.results ?? [];
    } catch (error) {
      this.error = messageOf(error);
    }
    this.requestUpdate();
  }

  private async invite(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const who = this.identifier.trim();
    let answer = "";
    const sent = await this.act(async () => {
      answer = (await api.invite(this.projectId, who, this.inviteRole)).detail;
    }, "");
    if (sent) {
      this.notice = `${who} as ${this.inviteRole}: ${answer}`;
      this.identifier = "";
      this.requestUpdate();
    }
  }

  private async leave(): Promise<void> {
    this.confirmLeave = false;
    this.error = "";
    try {
      await api.leaveProject(this.projectId);
      navigate("/");
    } catch (error) {
      this.error = messageOf(error);
      this.requestUpdate();
    }
  }

  private renderInvite(): TemplateResult {
    return html`<section class="panel" aria-labelledby="invite-title">
      <h2 id="invite-title">Invite</h2>
      <form class="row" @submit=${(e: SubmitEvent) => void this.invite(e)}>
        <label for="invite-who">Username or e-mail</label>
        <input id="invite-who" type="text" required maxlength="254" autocomplete="off" .value=${this.identifier}
          @input=${(e: Event) => (this.identifier = (e.target as HTMLInputElement).value)} />
        <label for="invite-role">Role</label>
        <select id="invite-role" @change=${(e: Event) => (this.inviteRole = (e.target as HTMLSelectElement).value as Role)}>
          ${ROLES.map((r) => html`<option value=${r} ?selected=${r === this.inviteRole} ?disabled=${r === "owner" && !this.isOwner}>${r}</option>`)}
        </select>
        <button type="submit" class="primary">Invite</button>
      </form>
      <p class="small muted">The invited user sees the invitation on their projects page and accepts or declines it;
        it expires after a week.</p>
      ${this.invitations.length
        ? html`<h3>Pending invitations</h3>
            <ul class="label-rows" aria-label="Pending invitations">
              ${this.invitations.map(
                (inv) => html`<li>
                  <span><strong>${inv.identifier}</strong> as ${inv.role}
                    <span class="small muted">by ${inv.invited_by || "—"}, until ${new Date(inv.expires_at).toLocaleDateString()}</span></span>
                  <button class="link danger" aria-label="Cancel invitation to ${inv.identifier}"
                    ?disabled=${inv.role === "owner" && !this.isOwner}
                    @click=${() => void this.act(() => api.revokeInvitation(this.projectId, inv.id), `Invitation to ${inv.identifier} cancelled.`)}>
                    Cancel</button>
                </li>`,
              )}
            </ul>`
        : nothing}
    </section>`;
  }

  private renderMember(m: Member): TemplateResult {
    const me = m.user === config.user.id;
    // Only owners change an owner's role or give the owner role.
    const locked = !this.canManage || (m.role === "owner" && !this.isOwner);
    return html`<tr data-testid="member-row">
      <td>${m.username}${me ? html` <span class="badge">you</span>` : nothing}</td>
      <td>
        ${locked
          ? m.role
          : html`<select aria-label="Role of ${m.username}"
              @change=${(e: Event) => {
                const role = (e.target as HTMLSelectElement).value;
                void this.act(() => api.updateMember(this.projectId, m.id, role), `${m.username} is now ${role}.`);
              }}>
              ${ROLES.map((r) => html`<option value=${r} ?selected=${r === m.role} ?disabled=${r === "owner" && !this.isOwner}>${r}</option>`)}
            </select>`}
      </td>
      <td>
        ${!locked && !me
          ? html`<button class="link danger" aria-label="Remove ${m.username}"
              @click=${() => void this.act(() => api.removeMember(this.projectId, m.id), `${m.username} was removed.`)}>Remove</button>`
          : nothing}
      </td>
    </tr>`;
  }

  private renderLeave(): TemplateResult {
    const name = this.project?.name ?? "this project";
    return this.confirmLeave
      ? html`<div class="row" role="group" aria-label="Confirm leaving">
          <span>Leave ${name}? You need a new invitation to come back.</span>
          <button class="danger" @click=${() => void this.leave()}>Yes, leave</button>
          <button @click=${() => { this.confirmLeave = false; this.requestUpdate(); }}>Stay</button>
        </div>`
      : html`<button @click=${() => { this.confirmLeave = true; this.requestUpdate(); }}>Leave project</button>`;
  }

  override render(): TemplateResult {
    return html`<main class="page">
      ${projectNav(this.projectId, this.project?.name, "members")}
      <h1>Members</h1>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${this.notice ? html`<p role="status">${this.notice}</p>` : nothing}
      ${this.canManage ? this.renderInvite() : nothing}
      <section class="panel" aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        <table class="versions">
          <thead><tr><th>User</th><th>Role</th><th><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${this.members.map((m) => this.renderMember(m))}</tbody>
        </table>
        ${this.renderLeave()}
      </section>
    </main>`;
  }
}
customElements.define("members-page", MembersPage);
