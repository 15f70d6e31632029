/** Form helpers of the project pages, without DOM: the server's errors split into one message
 * per field (shown next to that field) and the rest, label colours, setting bounds. */
import type { SettingBound } from "../api/types";

export interface FormErrors {
  /** The message that belongs to no one field. */
  general: string;
  /** Message per field path ("name", "labels.1.color", "settings.auto_points_per_side"). */
  fields: Map<string, string>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** DRF's nested `errors` ({"labels": [{}, {"color": ["…"]}]}) flattened to path → message. */
function flatten(node: unknown, path: string, into: Map<string, string>): void {
  if (typeof node === "string") {
    const key = path || "";
    into.set(key, into.has(key) ? `${into.get(key)} ${node}` : node);
  } else if (Array.isArray(node)) {
    const leaves = node.every((item) => typeof item === "string");
    node.forEach((item, i) => { flatten(item, leaves ? path : path ? `${path}.${i}` : String(i), into); });
  } else if (isRecord(node)) {
    for (const [key, value] of Object.entries(node)) {
      flatten(value, key === "non_field_errors" ? path : path ? `${path}.${key}` : key, into);
    }
  }
}

/** One problem line of the settings check reads "name: expected …": keyed by the setting. */
function settingProblems(problems: unknown[], into: Map<string, string>): string[] {
  const unplaced: string[] = [];
  for (const problem of problems) {
    if (typeof problem !== "string") continue;
    const match = /^([a-z_]+): (.*)$/.exec(problem);
    if (match?.[1] && match[2]) into.set(`settings.${match[1]}`, match[2]);
    else unplaced.push(problem);
  }
  return unplaced;
}

/** The error bodies the API sends (`{detail, errors?, problems?}`) as form errors; anything
 * else (a network error, a string) becomes the general message. */
export function formErrors(status: number, body: unknown, fallback: string): FormErrors {
  const fields = new Map<string, string>();
  if (!isRecord(body)) return { general: fallback || `HTTP ${status}`, fields };
  const detail = typeof body.detail === "string" ? body.detail : fallback;
  if (body.errors !== undefined) {
    flatten(body.errors, "", fields);
    const loose = fields.get("");
    fields.delete("");
    const general = fields.size ? "Please correct the marked fields." : detail;
    return { general: loose ? `${general} ${loose}` : general, fields };
  }
  if (Array.isArray(body.problems)) {
    const unplaced = settingProblems(body.problems, fields);
    return { general: [detail, ...unplaced].join(" "), fields };
  }
  return { general: detail, fields };
}

/** Distinct colours for new labels, in order (Sasha Trubetskoy's list, the first ten). */
export const LABEL_PALETTE = [
  "#e6194b",
  "#3cb44b",
  "#4363d8",
  "#f58231",
  "#911eb4",
  "#42d4f4",
  "#f032e6",
  "#bfef45",
  "#469990",
  "#9a6324",
] as const;

/** The first palette colour no label uses yet (cycling once all are taken). */
export function nextLabelColor(used: readonly string[]): string {
  const taken = new Set(used.map((c) => c.toLowerCase()));
  return LABEL_PALETTE.find((c) => !taken.has(c)) ?? LABEL_PALETTE[used.length % LABEL_PALETTE.length] ?? "#ff0000";
}

/** Input attributes for a bounded setting: integers step by 1, numbers by 0.01. */
export function boundAttributes(bound: SettingBound): { min: string; max: string; step: string } {
  return { min: String(bound.minimum), max: String(bound.maximum), step: bound.type === "integer" ? "1" : "0.01" };
}

/** What is wrong with `raw` (an input's text) for `bound`, or null; empty means unset. */
export function boundProblem(bound: SettingBound, raw: string): string | null {
  if (raw.trim() === "") return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) return "Enter a number.";
  if (bound.type === "integer" && !Number.isInteger(value)) return "Enter a whole number.";
  if (value < bound.minimum || value > bound.maximum) return `From ${bound.minimum} to ${bound.maximum}.`;
  return null;
}
