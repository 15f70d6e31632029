/** Builders shared by the annotate/ tests. */
import type { Annotation } from "../../src/api/types";
import { encodeRle } from "../../src/sam/rle";

export const SIZE = { width: 4, height: 3 };

/** A 4x3 annotation on `image` whose mask is the pixels listed (row-major indices). */
export function annotation(id: number, image: number, pixels: number[] = [0], version = 1): Annotation {
  const mask = new Uint8Array(SIZE.width * SIZE.height);
  for (const p of pixels) mask[p] = 1;
  return {
    id,
    image,
    label: null,
    rle: encodeRle(mask, SIZE.height, SIZE.width),
    bbox: [0, 0, 1, 1],
    area: pixels.length,
    predicted_iou: null,
    source: "click",
    prompts: {},
    model_key: "sam_tiny",
    author: 1,
    version,
    review_state: "accepted",
    review_reason: "",
    reviewed_by: null,
    reviewed_at: null,
    created_at: "2026-12-01T00:00:00Z",
    updated_at: "2026-12-01T00:00:00Z",
  };
}
