/** Base of the work dialogs: a modal over the page (light DOM, so the app's stylesheet
 * applies) that takes the focus when it opens, closes on Escape and gives it back. */
import { LitElement, html, type TemplateResult } from "lit";

export abstract class WorkDialog extends LitElement {
  projectId = 0;
  static override properties = { projectId: { type: Number } };
  private opener: Element | null = null;

  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.opener = document.activeElement;
    this.addEventListener("keydown", this.onKey);
  }

  override disconnectedCallback(): void {
    this.removeEventListener("keydown", this.onKey);
    if (this.opener instanceof HTMLElement) this.opener.focus();
    super.disconnectedCallback();
  }

  protected override firstUpdated(): void {
    this.querySelector<HTMLElement>("[autofocus], select, input, button")?.focus();
  }

  private readonly onKey = (event: KeyboardEvent): void => {
    if (event.key !== "Escape") return;
    event.stopPropagation();
    this.close();
  };

  close(): void {
    this.dispatchEvent(new CustomEvent("close", { bubbles: true, composed: true }));
  }

  /** The modal frame around `body`, with a Close button that names its key. */
  protected frame(title: string, testid: string, body: TemplateResult): TemplateResult {
    return html`<div class="overlay">
      <div class="dialog work-dialog" role="dialog" aria-modal="true" aria-label=${title} data-testid=${testid}>
        <h2>${title}</h2>
        ${body}
        <div class="row dialog-foot"><span class="spacer"></span><button @click=${() => { this.close(); }} aria-keyshortcuts="Escape">Close <kbd>Esc</kbd></button></div>
      </div>
    </div>`;
  }
}
