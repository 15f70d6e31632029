/** The server's message for one form field, shown right after it (and announced). */
import { html, nothing, type TemplateResult } from "lit";
import type { FormErrors } from "./forms";

export function fieldError(errors: FormErrors, field: string, id: string): TemplateResult | typeof nothing {
  const message = errors.fields.get(field);
  return message ? html`<span class="field-error" id=${id} role="alert">${message}</span>` : nothing;
}
