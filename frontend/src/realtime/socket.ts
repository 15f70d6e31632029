/** The project room websocket: reconnects with backoff and asks the server to replay what
 * it missed (`catch_up` with the last sequence number seen). */
import type { ServerEvent } from "../api/events.gen";

export type { JobProgress, PresenceUser, ServerEvent } from "../api/events.gen";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export class ProjectSocket {
  private socket: WebSocket | null = null;
  private lastSeq = 0;
  private retry = 0;
  private timer: number | undefined;
  private stopped = false;
  private image: number | null = null;
  state: ConnectionState = "connecting";

  constructor(
    private readonly projectId: number,
    private readonly onEvent: (event: ServerEvent) => void,
    private readonly onState: (state: ConnectionState) => void,
  ) {
    this.connect();
    window.addEventListener("online", this.reconnectNow);
  }

  private readonly reconnectNow = (): void => {
    if (this.state !== "open" && !this.stopped) {
      window.clearTimeout(this.timer);
      this.connect();
    }
  };

  private setState(state: ConnectionState): void {
    this.state = state;
    this.onState(state);
  }

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/projects/${this.projectId}/`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      const reconnected = this.retry > 0 || this.lastSeq > 0;
      this.retry = 0;
      this.setState("open");
      if (reconnected) this.send({ action: "catch_up", after: this.lastSeq });
      if (this.image !== null) this.send({ action: "presence", image: this.image });
    });
    socket.addEventListener("message", (message: MessageEvent<string>) => {
      let data: ServerEvent;
      try {
        data = JSON.parse(message.data) as ServerEvent;
      } catch {
        return;
      }
      const seq = (data.payload as { seq?: unknown }).seq;
      if (typeof seq === "number" && seq > this.lastSeq) this.lastSeq = seq;
      if (data.event === "caught_up" && data.payload.seq > this.lastSeq) this.lastSeq = data.payload.seq;
      this.onEvent(data);
    });
    socket.addEventListener("close", (event) => {
      if (this.stopped) return;
      if (event.code === 4401 || event.code === 4404) {
        this.setState("closed");
        return;
      }
      this.setState("reconnecting");
      const delay = Math.min(15000, 500 * 2 ** this.retry++);
      this.timer = window.setTimeout(() => { this.connect(); }, delay);
    });
  }

  send(message: Record<string, unknown>): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  setImage(image: number | null): void {
    this.image = image;
    this.send({ action: "presence", image });
  }

  close(): void {
    this.stopped = true;
    window.removeEventListener("online", this.reconnectNow);
    window.clearTimeout(this.timer);
    this.socket?.close();
  }
}
