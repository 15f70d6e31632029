/** What the job dialogs send and say: export formats and options, segment-everything
 * thresholds within the bounds the server announces, and a job's outcome in words. */
import type { SegmentJob } from "../api/types";
import type { ExportFormat, JobOption } from "../api/work";

export interface FormatChoice {
  id: string;
  name: string;
  format: ExportFormat;
  /** COCO, CVAT and Label Studio write masks as RLE or as traced polygons. */
  polygons?: boolean;
  /** The formats that write a validation split. */
  split: boolean;
}

export const FORMAT_CHOICES: FormatChoice[] = [
  { id: "coco-rle", name: "COCO (RLE masks)", format: "coco", split: true },
  { id: "coco-polygons", name: "COCO (polygons)", format: "coco", polygons: true, split: true },
  { id: "yolo", name: "YOLO segmentation", format: "yolo", split: true },
  { id: "png", name: "PNG masks", format: "png", split: false },
  { id: "voc", name: "Pascal VOC", format: "voc", split: true },
  { id: "cvat", name: "CVAT for images 1.1", format: "cvat", split: false },
  { id: "labelstudio", name: "Label Studio JSON", format: "labelstudio", split: false },
];

export interface ExportForm {
  choice: string;
  tolerance: number;
  valSplit: number;
  status: string[];
  labels: number[];
  reviewStates: string[];
  includeImages: boolean;
}

export function formatChoice(id: string): FormatChoice {
  return FORMAT_CHOICES.find((c) => c.id === id) ?? (FORMAT_CHOICES[0] as FormatChoice);
}

/** The request body's `format` and `options` (empty filters are left out: the server's
 * defaults apply). */
export function exportRequest(form: ExportForm): { format: ExportFormat; options: Record<string, unknown> } {
  const choice = formatChoice(form.choice);
  const options: Record<string, unknown> = { include_images: form.includeImages };
  if (choice.polygons) {
    options.mask_format = "polygons";
    options.tolerance = form.tolerance;
  }
  if (choice.split && form.valSplit > 0) options.val_split = form.valSplit;
  const filters: Record<string, unknown> = {};
  if (form.status.length) filters.status = form.status;
  if (form.labels.length) filters.labels = form.labels;
  if (form.reviewStates.length) filters.review_states = form.reviewStates;
  if (Object.keys(filters).length) options.filters = filters;
  return { format: choice.format, options };
}

/** `value` held within the option's bounds (integers rounded); NaN gives the default. */
export function clampOption(value: number, option: JobOption): number {
  const fallback = option.default ?? option.min;
  if (!Number.isFinite(value)) return fallback;
  const held = Math.min(option.max, Math.max(option.min, value));
  return option.kind === "int" ? Math.round(held) : held;
}

/** The step of an input for the option: whole numbers, or hundredths of a 0–1 range. */
export function optionStep(option: JobOption): number {
  return option.kind === "int" ? 1 : option.max - option.min <= 1 ? 0.01 : 0.1;
}

/** The outcome of segment-everything jobs in words: never "ready" when nothing was kept. */
export function segmentOutcome(jobs: SegmentJob[]): string {
  const failed = jobs.filter((j) => j.state === "failed");
  const done = jobs.filter((j) => j.state === "done");
  const kept = done.reduce((n, j) => n + j.annotations, 0);
  const parts: string[] = [];
  if (done.length > 0 && kept === 0) {
    const threshold = done[0]?.options.pred_iou_thresh;
    const now = typeof threshold === "number" ? ` (now ${threshold})` : "";
    parts.push(`0 masks kept — try a lower predicted-IoU threshold${now}.`);
  } else if (kept > 0) {
    parts.push(`${kept} proposal${kept === 1 ? "" : "s"} ready to review.`);
  }
  if (failed.length > 0) parts.push(`${failed.length} failed: ${failed[0]?.error ?? ""}`);
  return parts.join(" ");
}
