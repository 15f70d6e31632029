/** Geometry of the small SVG plots of the models page: numbers in, polyline points out. */
import type { EvaluationMetrics } from "../api/types";

export const EVALUATED_CLICKS = [1, 3, 5] as const;

export interface PlotBox {
  width: number;
  height: number;
  pad: number;
}

/** x of a click count (1..5) in the mIoU plot. */
export function clickX(clicks: number, box: PlotBox): number {
  return box.pad + ((clicks - 1) / 4) * (box.width - 2 * box.pad);
}

/** y of an mIoU (clamped to 0..1, 0 at the bottom) in the mIoU plot. */
export function miouY(miou: number, box: PlotBox): number {
  return box.pad + (1 - Math.min(1, Math.max(0, miou))) * (box.height - 2 * box.pad);
}

/** SVG polyline points of the mIoU after 1, 3 and 5 clicks; missing values are skipped. */
export function miouPoints(metrics: EvaluationMetrics, box: PlotBox): string {
  const values: Record<number, number | undefined> = { 1: metrics.miou_1, 3: metrics.miou_3, 5: metrics.miou_5 };
  return EVALUATED_CLICKS.flatMap((clicks) => {
    const miou = values[clicks];
    if (miou === undefined || !Number.isFinite(miou)) return [];
    return [`${clickX(clicks, box).toFixed(1)},${miouY(miou, box).toFixed(1)}`];
  }).join(" ");
}

/** SVG polyline points of a loss curve scaled to its own range; "" for fewer than 2
 * finite values. */
export function lossPoints(values: readonly number[], box: PlotBox): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) return "";
  const low = Math.min(...finite);
  const span = Math.max(...finite) - low || 1;
  const step = (box.width - 2 * box.pad) / (finite.length - 1);
  const height = box.height - 2 * box.pad;
  return finite
    .map((v, i) => `${(box.pad + i * step).toFixed(1)},${(box.pad + (1 - (v - low) / span) * height).toFixed(1)}`)
    .join(" ");
}
