/** A review decision (`annotations.reviewed`) names the annotations it changed and their new
 * versions; a page applies it to the copies it holds. */
import type { AnnotationsReviewedPayload } from "../api/events.gen";
import type { Annotation } from "../api/types";

/** `a` as `decision` left it at `version`: its review fields change, its mask does not. */
export function reviewedAnnotation(a: Annotation, decision: AnnotationsReviewedPayload, version: number): Annotation {
  const { review_state, review_reason, reviewed_by, reviewed_at } = decision;
  return { ...a, review_state, review_reason, reviewed_by, reviewed_at, version, updated_at: reviewed_at };
}
