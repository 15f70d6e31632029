import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerEvent } from "../../src/api/events.gen";
import { ProjectSocket } from "../../src/realtime/socket";

/** A WebSocket stand-in: records what the client sends; the test plays the server. */
class FakeSocket extends EventTarget {
  static OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  constructor(readonly url: string) {
    super();
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {}
  open(): void {
    this.readyState = FakeSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }
  serve(event: string, payload: Record<string, unknown>): void {
    this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify({ event, payload }) }));
  }
  drop(code: number): void {
    this.readyState = 3;
    this.dispatchEvent(Object.assign(new Event("close"), { code }));
  }
  catchUps(): unknown[] {
    return this.sent.filter((m) => m.action === "catch_up").map((m) => m.after);
  }
}

function sock(index: number): FakeSocket {
  const ws = FakeSocket.all[index];
  if (!ws) throw new Error(`no socket ${index}`);
  return ws;
}

const created = (seq: number) => ({ id: seq, image: 1, version: 1, seq });

describe("ProjectSocket catch-up", () => {
  let events: ServerEvent[];
  let socket: ProjectSocket;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal("location", { protocol: "http:", host: "app.test" });
    vi.stubGlobal("window", Object.assign(new EventTarget(), { setTimeout, clearTimeout }));
    events = [];
    socket = new ProjectSocket(3, (e) => events.push(e), () => undefined);
    sock(0).open();
    sock(0).serve("hello", { role: "viewer", user: { id: 1, username: "v" }, seq: 10 });
  });

  afterEach(() => {
    socket.close();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("asks once for a gap, not once per later event, and again only while there is more", () => {
    const ws = sock(0);
    ws.serve("annotation.created", created(11));
    expect(ws.catchUps()).toEqual([]);
    for (const seq of [13, 14, 15]) ws.serve("annotation.created", created(seq));
    expect(ws.catchUps()).toEqual([11]);
    ws.serve("annotation.created", created(12));
    ws.serve("caught_up", { seq: 13, more: true });
    expect(ws.catchUps()).toEqual([11, 13]);
    ws.serve("caught_up", { seq: 15, more: false });
    ws.serve("annotation.created", created(16));
    expect(ws.catchUps()).toEqual([11, 13]);
    expect(events.filter((e) => e.event === "annotation.created")).toHaveLength(6);
  });

  it("reconnects after being dropped as too slow and catches up from where it was", () => {
    const first = sock(0);
    first.serve("annotation.created", created(11));
    first.drop(4429);
    vi.advanceTimersByTime(1000);
    const second = sock(1);
    second.open();
    second.serve("hello", { role: "viewer", user: { id: 1, username: "v" }, seq: 30 });
    expect(second.catchUps()).toEqual([11]);
  });
});
