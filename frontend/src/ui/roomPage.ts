/** Base of the project pages that follow the project's websocket room while shown. */
import { LitElement } from "lit";
import { ProjectSocket, type ServerEvent } from "../realtime/socket";

export abstract class ProjectRoomPage extends LitElement {
  projectId = 0;
  static override properties = { projectId: { type: Number } };

  private socket: ProjectSocket | null = null;

  /** Light DOM, so the app's stylesheet applies. */
  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
    this.socket = new ProjectSocket(this.projectId, (e) => { this.onEvent(e); }, () => { this.requestUpdate(); });
  }

  override disconnectedCallback(): void {
    this.socket?.close();
    super.disconnectedCallback();
  }

  /** (Re)load the page's data from the REST API. */
  protected abstract load(): Promise<void>;

  /** Apply one room event (a teammate's change, a job's progress, presence). */
  protected abstract onEvent(event: ServerEvent): void;
}
