/** Base of the project pages that follow the project's websocket room while shown. */
import { api } from "../api/client";
import type { Project } from "../api/types";
import { work, type Member } from "../api/work";
import { ProjectSocket, type ServerEvent } from "../realtime/socket";
import { LoadTickets } from "./latest";
import { LoadingPage } from "./page";

/** The room's project, fetched once, and its members, fetched until there are some (a failed
 * list leaves the member filters empty rather than failing the page). */
export async function projectTeam(
  projectId: number,
  project: Project | null,
  members: Member[],
): Promise<[Project, Member[]]> {
  return [
    project ?? (await api.project(projectId)),
    members.length > 0 ? members : await work.members(projectId).catch(() => []),
  ];
}

export abstract class ProjectRoomPage extends LoadingPage {
  projectId = 0;
  static override properties = { projectId: { type: Number } };

  /** Whether the page's data is being fetched; pages say "Loading…" meanwhile. */
  protected loading = true;
  private socket: ProjectSocket | null = null;
  private readonly loads = new LoadTickets();

  override connectedCallback(): void {
    super.connectedCallback();
    this.socket = new ProjectSocket(this.projectId, (e) => { this.onEvent(e); }, () => { this.requestUpdate(); });
  }

  override disconnectedCallback(): void {
    this.socket?.close();
    super.disconnectedCallback();
  }

  /** Run `fetch` (which shows its own failure) with `loading` set, re-rendering before and after.
   * Loads can overlap (a filter changed while the page's first load is in flight) and answer
   * out of order: `fetch` is told whether it is still the latest, and only the latest shows
   * what it fetched and ends the loading state. */
  protected async whileLoading(fetch: (isLatest: () => boolean) => Promise<void>): Promise<void> {
    const isLatest = this.loads.take();
    this.loading = true;
    this.requestUpdate();
    await fetch(isLatest);
    if (!isLatest()) return;
    this.loading = false;
    this.requestUpdate();
  }

  /** Apply one room event (a teammate's change, a job's progress, presence). */
  protected abstract onEvent(event: ServerEvent): void;
}
