/**
 * Prompt → decoder tensors, following SAM's `ResizeLongestSide` and `SamOnnxModel`.
 *
 * The image (original size h×w) is resized so that its longest side is `imgSize`; point
 * coordinates are scaled into that frame (`x * newW / w`, `y * newH / h`, continuous pixel
 * coordinates, as SamPredictor's `apply_coords`). Without a box a padding point (0, 0) with
 * label -1 is appended (as SamPredictor does for the ONNX model); a box becomes two corner
 * points with labels 2 and 3, placed before the clicks.
 */

export type PointLabel = 0 | 1;

export interface Point {
  x: number;
  y: number;
  label: PointLabel;
}

export type Box = [number, number, number, number];

export interface Prompt {
  points: Point[];
  box: Box | null;
}

export interface Size {
  height: number;
  width: number;
}

/** SAM's ResizeLongestSide.get_preprocess_shape. */
export function preprocessShape(original: Size, imgSize: number): Size {
  const scale = imgSize / Math.max(original.height, original.width);
  return {
    height: Math.floor(original.height * scale + 0.5),
    width: Math.floor(original.width * scale + 0.5),
  };
}

export function toInputFrame(x: number, y: number, original: Size, input: Size): [number, number] {
  return [x * (input.width / original.width), y * (input.height / original.height)];
}

export interface PromptTensors {
  pointCoords: Float32Array; // (1, N, 2)
  pointLabels: Float32Array; // (1, N)
  numPoints: number;
}

/** Build point_coords / point_labels for the decoder, coordinates in the input frame.
 * `pad` false leaves out SAM's padding point, for graphs that append it themselves (SAM 2's
 * prompt encoder always appends one, box or not). */
export function buildPromptTensors(prompt: Prompt, original: Size, input: Size, pad = true): PromptTensors {
  const coords: number[] = [];
  const labels: number[] = [];
  if (prompt.box) {
    const [x0, y0, x1, y1] = normaliseBox(prompt.box);
    coords.push(...toInputFrame(x0, y0, original, input), ...toInputFrame(x1, y1, original, input));
    labels.push(2, 3);
  }
  for (const p of prompt.points) {
    coords.push(...toInputFrame(p.x, p.y, original, input));
    labels.push(p.label);
  }
  if (!prompt.box && pad) {
    coords.push(0, 0);
    labels.push(-1);
  }
  return {
    pointCoords: Float32Array.from(coords),
    pointLabels: Float32Array.from(labels),
    numPoints: labels.length,
  };
}

export function normaliseBox(box: Box): Box {
  const [a, b, c, d] = box;
  return [Math.min(a, c), Math.min(b, d), Math.max(a, c), Math.max(b, d)];
}

export function isEmptyPrompt(prompt: Prompt): boolean {
  return prompt.points.length === 0 && prompt.box === null;
}

/**
 * Which output masks to offer. A "multi" decoder returns 4 masks: index 0 is SAM's
 * single-mask output, 1-3 the multimask outputs. SAM's own rule: one click is ambiguous,
 * so offer the three multimask outputs; with more prompts the single-mask output is the
 * better one, offered first beside the two best multimask outputs. The preselected mask is
 * the one with the highest predicted IoU for a single click, SAM's single output otherwise.
 */
export function candidateIndices(
  iou: ArrayLike<number>,
  prompt: Prompt,
): { indices: number[]; preselected: number } {
  const count = iou.length;
  const all = Array.from({ length: count }, (_, i) => i);
  const byIou = (list: number[]): number[] => [...list].sort((a, b) => (iou[b] ?? 0) - (iou[a] ?? 0));
  if (count < 4) {
    const sorted = byIou(all);
    return { indices: all, preselected: sorted[0] ?? 0 };
  }
  const single = prompt.box === null && prompt.points.length === 1;
  if (single) {
    const multi = [1, 2, 3];
    return { indices: multi, preselected: byIou(multi)[0] ?? 1 };
  }
  const bestTwo = byIou([1, 2, 3]).slice(0, 2).sort((a, b) => a - b);
  return { indices: [0, ...bestTwo], preselected: 0 };
}
