/** <import-dialog>: a COCO, YOLO, CVAT or Label Studio zip into the project; what was
 * created, what was ignored, and the server's located errors when it refuses the archive. */
import { html, nothing, type TemplateResult } from "lit";
import { problemsOf, work, type ImportResult } from "../api/work";
import { WorkDialog } from "./dialog";

const FORMATS: [string, string][] = [
  ["", "Detect from the archive"],
  ["coco", "COCO"],
  ["yolo", "YOLO"],
  ["cvat", "CVAT for images"],
  ["labelstudio", "Label Studio JSON"],
];

export class ImportDialog extends WorkDialog {
  private format = "";
  private file: File | null = null;
  private busy = false;
  private result: ImportResult | null = null;
  private problems: string[] = [];

  private async start(): Promise<void> {
    if (!this.file) return;
    this.busy = true;
    this.result = null;
    this.problems = [];
    this.requestUpdate();
    try {
      this.result = await work.importDataset(this.projectId, this.file, this.format);
      this.dispatchEvent(new CustomEvent("imported", { bubbles: true, composed: true }));
    } catch (error) {
      this.problems = problemsOf(error);
    }
    this.busy = false;
    this.requestUpdate();
  }

  private summary(r: ImportResult): TemplateResult {
    return html`<div role="status" data-testid="import-result">
      <p>Imported ${r.format}: ${r.images_created} new images (${r.images_existing} already here), ${r.annotations_created} annotations
        (proposed, for review)${r.labels_created.length ? `, new labels ${r.labels_created.join(", ")}` : ""}.</p>
      ${r.ignored.length ? html`<p class="small muted">Ignored:</p><ul class="small">${r.ignored.map((i) => html`<li>${i}</li>`)}</ul>` : nothing}
    </div>`;
  }

  override render(): TemplateResult {
    return this.frame(
      "Import annotations",
      "import-dialog",
      html`<form class="fields" @submit=${(e: Event) => { e.preventDefault(); void this.start(); }}>
          <label class="field"><span>Zip archive</span>
            <input type="file" accept=".zip,application/zip" required @change=${(e: Event) => { this.file = (e.target as HTMLInputElement).files?.[0] ?? null; this.requestUpdate(); }} />
          </label>
          <label class="field"><span>Format</span>
            <select @change=${(e: Event) => (this.format = (e.target as HTMLSelectElement).value)}>
              ${FORMATS.map(([v, name]) => html`<option value=${v} ?selected=${v === this.format}>${name}</option>`)}
            </select>
          </label>
          <div class="row"><button class="primary" type="submit" ?disabled=${this.busy || !this.file}>${this.busy ? "Importing…" : "Import"}</button></div>
        </form>
        ${this.result ? this.summary(this.result) : nothing}
        ${this.problems.length
          ? html`<div role="alert" data-testid="import-errors"><p class="error">The archive was not imported:</p>
              <ul class="error">${this.problems.map((p) => html`<li>${p}</li>`)}</ul></div>`
          : nothing}`,
    );
  }
}
customElements.define("import-dialog", ImportDialog);
