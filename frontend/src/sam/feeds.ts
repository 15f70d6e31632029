/** The inputs of one decoder run, by the names the graph declares (SAM's official or low-res
 * decoders, a fast variant's click graph, SAM 2's graph with its high-resolution maps). */
import type { PromptTensors, Size } from "./prompts";

export type MakeTensor<T> = (data: Float32Array, dims: number[]) => T;

export interface FeedSources<T> {
  /** (1, C, h, w) image embedding. */
  embedding: T;
  /** Named tensors fed as they are: the embedding's extra maps, a prepare graph's outputs. */
  extra: Record<string, T>;
  prompt: PromptTensors;
  /** Previous low-res logits (lowSide²), or null. */
  maskInput: Float32Array | null;
  /** lowSide² zeros, fed as the mask input when there is none. */
  zeroMask: Float32Array;
  lowSide: number;
  originalSize: Size;
}

export function decoderFeeds<T>(inputNames: readonly string[], make: MakeTensor<T>, s: FeedSources<T>): Record<string, T> {
  const { prompt, maskInput, lowSide } = s;
  const built: Record<string, () => T> = {
    image_embeddings: () => s.embedding,
    point_coords: () => make(prompt.pointCoords, [1, prompt.numPoints, 2]),
    point_labels: () => make(prompt.pointLabels, [1, prompt.numPoints]),
    mask_input: () => make(maskInput ?? s.zeroMask, [1, 1, lowSide, lowSide]),
    has_mask_input: () => make(new Float32Array([maskInput ? 1 : 0]), [1]),
    orig_im_size: () => make(new Float32Array([s.originalSize.height, s.originalSize.width]), [2]),
  };
  const result: Record<string, T> = {};
  for (const name of inputNames) {
    const given = s.extra[name];
    const make = built[name];
    if (given !== undefined) result[name] = given;
    else if (make) result[name] = make();
    else throw new Error(`decoder input ${name} is not supported`);
  }
  return result;
}
