import { afterEach, describe, expect, it, vi } from "vitest";
import { CommandController, type CommandTarget } from "../../src/annotate/commands";
import type { Editor } from "../../src/annotate/editor";

interface Fixture {
  host: CommandTarget & { redraws: number; keysPaused: boolean };
  accepted: (number | null)[];
  controller: CommandController;
}

function fixture(): Fixture {
  const accepted: (number | null)[] = [];
  const editor = { store: { selected: null }, accept: async (label: number | null) => { accepted.push(label); } } as unknown as Editor;
  const host = {
    tool: "sam", brushRadius: 8, polygonView: false, opacity: 0.5, showHelp: false, spaceDown: false, keysPaused: false,
    labelId: 7, project: { labels: [{ id: 7 }, { id: 9 }] }, redraws: 0,
    set: (change: { labelId: number | null }) => { host.labelId = change.labelId; },
    redraw: () => { host.redraws += 1; },
    addController: () => undefined, removeController: () => undefined, requestUpdate: () => undefined,
    updateComplete: Promise.resolve(true),
    fitView: () => undefined, go: () => undefined, segmentEverything: () => undefined, markDone: () => undefined,
    deleteAnnotation: () => undefined, editAnnotation: () => undefined,
  } as unknown as Fixture["host"];
  return { host, accepted, controller: new CommandController(host, editor) };
}

/** A key press on the window, from `target` (the element that had the focus). */
function press(key: string, target: { tagName: string } | null = null): Event {
  const event = Object.assign(new Event("keydown", { cancelable: true }), { key, code: key === " " ? "Space" : key, ctrlKey: false, metaKey: false, shiftKey: false });
  if (target) Object.defineProperty(event, "target", { value: target });
  window.dispatchEvent(event);
  return event;
}

describe("workspace commands", () => {
  afterEach(() => { vi.unstubAllGlobals(); });

  it("runs the same command from a key and from its button, and redraws after each", () => {
    vi.stubGlobal("window", new EventTarget());
    const { host, accepted, controller } = fixture();
    controller.hostConnected();
    const enter = press("Enter");
    controller.run("accept");
    expect(accepted).toEqual([7, 7]);
    expect(enter.defaultPrevented).toBe(true);
    expect(host.redraws).toBe(2);
    controller.run("next-label");
    press("l");
    expect(host.labelId).toBe(7);
    press("b");
    expect(host.tool).toBe("brush");
  });

  it("leaves keys to text fields, focused buttons and open dialogs, and stops listening when the workspace goes", () => {
    vi.stubGlobal("window", new EventTarget());
    const { host, accepted, controller } = fixture();
    controller.hostConnected();
    press("a", { tagName: "INPUT" });
    press("Enter", { tagName: "BUTTON" });
    host.keysPaused = true;
    press("a");
    expect(accepted).toEqual([]);
    host.keysPaused = false;
    press("a", { tagName: "BUTTON" });
    expect(accepted).toEqual([7]);
    press(" ");
    expect(host.spaceDown).toBe(true);
    window.dispatchEvent(Object.assign(new Event("keyup"), { code: "Space" }));
    expect(host.spaceDown).toBe(false);
    controller.hostDisconnected();
    press("a");
    expect(accepted).toEqual([7]);
  });
});
