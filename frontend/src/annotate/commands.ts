/** The workspace's commands: a Lit controller that turns keys (the keymap in `core/keys.ts`)
 * and the panels' buttons into the same commands, and what each command does. */
import type { ReactiveController, ReactiveControllerHost } from "lit";
import type { Label } from "../api/types";
import { typingInField } from "../ui/shortcuts";
import { commandFor, type Command } from "./core/keys";
import type { Editor } from "./editor";
import type { Tool } from "./view/panels";

export interface CommandTarget extends ReactiveControllerHost {
  tool: Tool;
  brushRadius: number;
  polygonView: boolean;
  opacity: number;
  showHelp: boolean;
  spaceDown: boolean;
  /** A dialog with its own keys is open (segment everything): the workspace's keys pause. */
  readonly keysPaused: boolean;
  labelId: number | null;
  readonly project: { labels: Label[] } | null;
  set(change: { labelId: number | null }): void;
  fitView(): void;
  go(delta: number): void;
  segmentEverything(): void;
  markDone(): void;
  deleteAnnotation(id: number): void;
  editAnnotation(id: number, refine: boolean): void;
  redraw(): void;
}

export class CommandController implements ReactiveController {
  constructor(
    private readonly host: CommandTarget,
    private readonly editor: Editor,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    window.addEventListener("keydown", this.onKeyDown);
    window.addEventListener("keyup", this.onKeyUp);
  }

  hostDisconnected(): void {
    window.removeEventListener("keydown", this.onKeyDown);
    window.removeEventListener("keyup", this.onKeyUp);
  }

  /** Run a command, from its key or its button, and redraw. */
  readonly run = (command: Command): void => {
    runCommand(this.host, this.editor, command);
    this.host.redraw();
  };

  private readonly onKeyUp = (event: KeyboardEvent): void => {
    if (event.code === "Space") this.host.spaceDown = false;
  };

  private readonly onKeyDown = (event: KeyboardEvent): void => {
    if (typingInField(event) || this.host.keysPaused) return;
    const command = commandFor(event);
    if (!command) return;
    // Buttons take Enter and Space themselves when focused.
    const onButton = (event.target as HTMLElement | null)?.tagName === "BUTTON";
    if (onButton && (event.key === "Enter" || event.key === " ")) return;
    if (command === "undo" || command === "redo" || command === "pan" || command === "accept") event.preventDefault();
    this.run(command);
  };
}

export function runCommand(w: CommandTarget, editor: Editor, command: Command): void {
  const selected = editor.store.selected;
  const labels = w.project?.labels ?? [];
  switch (command) {
    case "candidate-1":
    case "candidate-2":
    case "candidate-3":
      void editor.selectCandidate(Number(command.slice(-1)) - 1);
      break;
    case "accept":
      void editor.accept(w.labelId);
      break;
    case "clear":
      if (w.showHelp) w.showHelp = false;
      else editor.clear();
      break;
    case "undo":
      editor.undo();
      break;
    case "redo":
      editor.redo();
      break;
    case "delete":
      if (selected !== null) w.deleteAnnotation(selected);
      break;
    case "tool-sam":
    case "tool-brush":
    case "tool-eraser":
      w.tool = command.slice(5) as Tool;
      break;
    case "brush-smaller":
      w.brushRadius = Math.max(1, Math.round(w.brushRadius / 1.25));
      break;
    case "brush-larger":
      w.brushRadius = Math.min(500, Math.round(w.brushRadius * 1.25) + 1);
      break;
    case "polygons":
      w.polygonView = !w.polygonView;
      break;
    case "fit":
      w.fitView();
      break;
    case "refine":
    case "edit":
      if (selected !== null) w.editAnnotation(selected, command === "refine");
      break;
    case "next-label": {
      const index = labels.findIndex((l) => l.id === w.labelId);
      w.set({ labelId: labels[(index + 1) % Math.max(1, labels.length)]?.id ?? null });
      break;
    }
    case "opacity":
      w.opacity = w.opacity >= 0.9 ? 0.2 : Math.round((w.opacity + 0.1) * 10) / 10;
      break;
    case "segment-everything":
      w.segmentEverything();
      break;
    case "next-image":
    case "previous-image":
      w.go(command === "next-image" ? 1 : -1);
      break;
    case "done":
      w.markDone();
      break;
    case "help":
      w.showHelp = !w.showHelp;
      break;
    case "pan":
      w.spaceDown = true;
      break;
  }
}
