/** Page-wide keyboard shortcuts and the fields that keep their keys. */

/** The key goes to a text field or a select, not to the page's shortcuts. */
export function typingInField(event: KeyboardEvent): boolean {
  const target = event.target as HTMLElement | null;
  return target !== null && ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName);
}
