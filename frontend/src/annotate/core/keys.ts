/** The workspace's keyboard commands: one table gives each its keys, the label shown on its
 * control (`<kbd>`, `aria-keyshortcuts`) and its line in the help overlay. */

export type Command =
  | "candidate-1"
  | "candidate-2"
  | "candidate-3"
  | "accept"
  | "clear"
  | "undo"
  | "redo"
  | "delete"
  | "tool-sam"
  | "tool-brush"
  | "tool-eraser"
  | "brush-smaller"
  | "brush-larger"
  | "polygons"
  | "fit"
  | "refine"
  | "edit"
  | "next-label"
  | "opacity"
  | "segment-everything"
  | "next-image"
  | "previous-image"
  | "done"
  | "help"
  | "pan";

interface Binding {
  keys: string[];
  /** With Ctrl (or Cmd); Shift is part of the key (Z vs. z) except for undo/redo. */
  mod?: boolean;
  shift?: boolean;
  /** Shown on the control and in `aria-keyshortcuts`. */
  label: string;
  aria: string;
}

export const BINDINGS: Record<Command, Binding> = {
  "candidate-1": { keys: ["1"], label: "1", aria: "1" },
  "candidate-2": { keys: ["2"], label: "2", aria: "2" },
  "candidate-3": { keys: ["3"], label: "3", aria: "3" },
  accept: { keys: ["Enter", "a"], label: "Enter", aria: "Enter A" },
  clear: { keys: ["Escape"], label: "Esc", aria: "Escape" },
  undo: { keys: ["z", "Z"], mod: true, shift: false, label: "Ctrl+Z", aria: "Control+Z" },
  redo: { keys: ["z", "Z", "y", "Y"], mod: true, shift: true, label: "Ctrl+Shift+Z", aria: "Control+Shift+Z Control+Y" },
  delete: { keys: ["Delete", "Backspace"], label: "Del", aria: "Delete" },
  "tool-sam": { keys: ["s"], label: "S", aria: "S" },
  "tool-brush": { keys: ["b"], label: "B", aria: "B" },
  "tool-eraser": { keys: ["e"], label: "E", aria: "E" },
  "brush-smaller": { keys: ["["], label: "[", aria: "[" },
  "brush-larger": { keys: ["]"], label: "]", aria: "]" },
  polygons: { keys: ["p"], label: "P", aria: "P" },
  fit: { keys: ["f"], label: "F", aria: "F" },
  refine: { keys: ["r"], label: "R", aria: "R" },
  edit: { keys: ["m"], label: "M", aria: "M" },
  "next-label": { keys: ["l"], label: "L", aria: "L" },
  opacity: { keys: ["o"], label: "O", aria: "O" },
  "segment-everything": { keys: ["g"], label: "G", aria: "G" },
  "next-image": { keys: [".", "PageDown"], label: ".", aria: ". PageDown" },
  "previous-image": { keys: [",", "PageUp"], label: ",", aria: ", PageUp" },
  done: { keys: ["D"], label: "Shift+D", aria: "Shift+D" },
  help: { keys: ["?", "h"], label: "?", aria: "? H" },
  pan: { keys: [" "], label: "Space", aria: "Space" },
};

export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
}

/** The command of a key press, or null. */
export function commandFor(input: KeyInput): Command | null {
  const mod = input.ctrlKey || input.metaKey;
  for (const [command, binding] of Object.entries(BINDINGS) as [Command, Binding][]) {
    if (!binding.keys.includes(input.key) || Boolean(binding.mod) !== mod) continue;
    // Ctrl+Y is redo whatever Shift says; Ctrl+Z is undo, Ctrl+Shift+Z redo.
    if (binding.shift !== undefined && input.key.toLowerCase() === "z" && binding.shift !== input.shiftKey) continue;
    return command;
  }
  return null;
}

/** The help overlay: what to press, and what it does. */
export const HELP_ROWS: [string, string][] = [
  ["Click / right-click", "positive / negative point (Alt or Shift + click: negative)"],
  ["Drag", "box (add clicks to refine it)"],
  ["Hover", "preview of the mask under the cursor"],
  ["1 – 3", "switch between candidate masks"],
  ["Enter or A", "accept the mask with the current label"],
  ["Esc", "clear the prompt, close a dialog"],
  ["Ctrl+Z / Ctrl+Shift+Z", "undo / redo a prompt or edit"],
  ["S / B / E", "SAM tool / brush / eraser; [ and ] change the brush size"],
  ["R / M", "refine the selected annotation with new clicks / edit it with the brush"],
  ["P", "polygon view (drag the vertices of the selected annotation)"],
  ["Ctrl+click", "select the annotation under the cursor"],
  ["Delete", "delete the selected annotation"],
  ["L / O", "next label / mask opacity"],
  ["G", "segment everything: thresholds, progress, proposals to review"],
  ["Shift+D", "mark the image done and open the next one of your queue"],
  ["Wheel / Space+drag / middle drag", "zoom / pan; F fits the image"],
  [", / .", "previous / next image"],
  ["Tab", "move between the controls; each shows its key"],
  ["? or H", "this help"],
];
