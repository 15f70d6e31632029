/** The project room websocket: reconnects with backoff and asks the server to replay what
 * it missed (`catch_up` after the last sequence number it holds every event up to).
 *
 * The server delivers a live socket's events in `seq` order; a gap (or a reconnect) makes
 * the socket ask once, and again only when the answer (`caught_up`) says there is more: one
 * page per request, never a request per event. A server that finds the client too slow
 * closes it (4429); it reconnects and catches up like after any drop. */
import type { ServerEvent } from "../api/events.gen";

export type { JobProgress, PresenceUser, ServerEvent } from "../api/events.gen";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export class ProjectSocket {
  private socket: WebSocket | null = null;
  /** Every event up to this seq has been received. */
  private lastSeq = 0;
  private synced = false;
  private catchingUp = false;
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
      this.retry = 0;
      this.catchingUp = false;
      this.setState("open");
      if (this.synced) this.catchUp();
      if (this.image !== null) this.send({ action: "presence", image: this.image });
    });
    socket.addEventListener("message", (message: MessageEvent<string>) => {
      let data: ServerEvent;
      try {
        data = JSON.parse(message.data) as ServerEvent;
      } catch {
        return;
      }
      this.track(data);
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

  private track(data: ServerEvent): void {
    if (data.event === "hello") {
      // The first hello names where the stream starts; after a reconnect the catch-up does.
      if (!this.synced) this.lastSeq = data.payload.seq;
      this.synced = true;
      return;
    }
    if (data.event === "caught_up") {
      this.lastSeq = Math.max(this.lastSeq, data.payload.seq);
      this.catchingUp = false;
      if (data.payload.more) this.catchUp();
      return;
    }
    const seq = (data.payload as { seq?: unknown }).seq;
    if (typeof seq !== "number") return;
    if (seq === this.lastSeq + 1) this.lastSeq = seq;
    else if (seq > this.lastSeq + 1) this.catchUp();
  }

  /** Ask for what follows `lastSeq`, unless an answer is on its way. */
  private catchUp(): void {
    if (this.catchingUp) return;
    this.catchingUp = true;
    this.send({ action: "catch_up", after: this.lastSeq });
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
