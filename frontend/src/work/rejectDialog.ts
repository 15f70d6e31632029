/** <reject-dialog>: the reason a rejection needs (the annotators see it on the image and in
 * their queue); sends `reject` with the reason, or `close`. */
import { html, type TemplateResult } from "lit";
import { WorkDialog } from "./dialog";

export const MAX_REASON_CHARS = 1000;

export class RejectDialog extends WorkDialog {
  count = 0;
  static override properties = { ...WorkDialog.properties, count: { type: Number } };
  private reason = "";

  private submit(event: Event): void {
    event.preventDefault();
    const reason = this.reason.trim();
    if (!reason) return;
    this.dispatchEvent(new CustomEvent("reject", { detail: reason }));
  }

  override render(): TemplateResult {
    const what = this.count === 1 ? "1 annotation" : `${this.count} annotations`;
    return this.frame(
      `Reject ${what}`,
      "reject-dialog",
      html`<form class="fields" @submit=${(e: Event) => { this.submit(e); }}>
        <label class="field"><span>Reason (shown to the annotator)</span>
          <textarea name="reason" rows="3" required maxlength=${MAX_REASON_CHARS} autofocus
            @input=${(e: Event) => { this.reason = (e.target as HTMLTextAreaElement).value; this.requestUpdate(); }}></textarea>
        </label>
        <div class="row"><button class="primary danger" type="submit" ?disabled=${!this.reason.trim()}>Reject</button></div>
      </form>`,
    );
  }
}
customElements.define("reject-dialog", RejectDialog);
