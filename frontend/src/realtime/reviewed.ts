/** A review decision (`annotations.reviewed`) names the annotations it changed and their new
 * versions; a page applies it to the copies it holds. */
import type { AnnotationsReviewedPayload } from "../api/events.gen";
import type { Annotation } from "../api/types";

/** What `decision` makes of a held copy: `a` as the decision left it (its review fields and
 * version change, its mask does not), or null when the decision does not name `a` at a newer
 * version than the one held. */
export function reviewOf(decision: AnnotationsReviewedPayload): (a: Annotation) => Annotation | null {
  const versions = new Map(decision.annotations.map((r) => [r.id, r.version]));
  const { review_state, review_reason, reviewed_by, reviewed_at } = decision;
  return (a) => {
    const version = versions.get(a.id);
    if (version === undefined || version <= a.version) return null;
    return { ...a, review_state, review_reason, reviewed_by, reviewed_at, version, updated_at: reviewed_at };
  };
}
