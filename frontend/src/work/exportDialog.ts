/** <export-dialog>: format, polygon tolerance, train/val split and filters; the new export's
 * progress; the project's export history with download and delete. */
import { html, nothing, type TemplateResult } from "lit";
import type { Job, Label } from "../api/types";
import { problemsOf, work, type JobOption } from "../api/work";
import { WorkDialog } from "./dialog";
import { FORMAT_CHOICES, clampOption, exportRequest, formatChoice, optionStep, type ExportForm } from "./jobs";

const STATUSES = ["new", "in_progress", "done", "reviewed"];
const REVIEW_STATES = ["accepted", "proposed", "rejected"];
const POLL_MS = 600;

function checked(e: Event): boolean {
  return (e.target as HTMLInputElement).checked;
}

function toggle<T>(list: T[], item: T, on: boolean): T[] {
  return on ? [...new Set([...list, item])] : list.filter((x) => x !== item);
}

export class ExportDialog extends WorkDialog {
  labels: Label[] = [];
  static override properties = { ...WorkDialog.properties, labels: { attribute: false } };
  private form: ExportForm = { choice: "coco-rle", tolerance: 1, valSplit: 0, status: [], labels: [], reviewStates: ["proposed", "accepted"], includeImages: true };
  private tolerance: JobOption | null = null;
  private history: Job[] = [];
  private error: string[] = [];
  private busy = false;
  private stopped = false;

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
    work.jobOptions(this.projectId).then(
      (o) => {
        this.tolerance = o.export.tolerance ?? null;
        if (this.tolerance?.default != null) this.form = { ...this.form, tolerance: this.tolerance.default };
        this.requestUpdate();
      },
      (error: unknown) => { this.show(error); },
    );
  }

  override disconnectedCallback(): void {
    this.stopped = true;
    super.disconnectedCallback();
  }

  private show(error: unknown): void {
    this.error = problemsOf(error);
    this.busy = false;
    this.requestUpdate();
  }

  private async refresh(): Promise<void> {
    try {
      this.history = (await work.exports(this.projectId)).results;
      this.requestUpdate();
    } catch (error) {
      this.show(error);
    }
  }

  private set(change: Partial<ExportForm>): void {
    this.form = { ...this.form, ...change };
    this.requestUpdate();
  }

  private async start(): Promise<void> {
    this.busy = true;
    this.error = [];
    this.requestUpdate();
    try {
      const { format, options } = exportRequest(this.form);
      let job = await work.startExport(this.projectId, format, options);
      this.history = [job, ...this.history];
      while (!this.stopped && job.state !== "done" && job.state !== "failed") {
        await new Promise((r) => setTimeout(r, POLL_MS));
        job = await work.exportJob(this.projectId, job.id);
        this.history = this.history.map((j) => (j.id === job.id ? job : j));
        this.requestUpdate();
      }
    } catch (error) {
      this.show(error);
      return;
    }
    this.busy = false;
    this.requestUpdate();
  }

  private async deleteExport(job: Job): Promise<void> {
    try {
      await work.deleteExport(this.projectId, job.id);
      this.history = this.history.filter((j) => j.id !== job.id);
      this.requestUpdate();
    } catch (error) {
      this.show(error);
    }
  }

  private checks(legend: string, values: (string | number)[], chosen: (string | number)[], name: (v: string | number) => string, set: (v: string | number, on: boolean) => void): TemplateResult {
    return html`<fieldset><legend>${legend}</legend>
      ${values.map((v) => html`<label class="small"><input type="checkbox" .checked=${chosen.includes(v)} @change=${(e: Event) => { set(v, checked(e)); }} /> ${name(v)}</label>`)}
    </fieldset>`;
  }

  private historyRow(job: Job): TemplateResult {
    const choice = FORMAT_CHOICES.find((c) => c.format === job.format && Boolean(c.polygons) === ((job.options as { mask_format?: string } | null)?.mask_format === "polygons"));
    const name = choice?.name ?? job.format;
    const when = new Date(job.created_at).toLocaleString();
    return html`<tr data-testid="export-row">
      <td>${name}</td><td class="small muted">${when}</td>
      <td>${job.state === "done" || job.state === "failed"
        ? html`<span class=${job.state === "failed" ? "error" : ""}>${job.state}${job.error ? `: ${job.error}` : ""}</span>`
        : html`<progress max="1" .value=${job.progress} aria-label="Progress of export ${job.id}"></progress>`}</td>
      <td>${job.download_url ? html`<a class="button" href=${job.download_url} download aria-label="Download export ${job.id} (${name})">Download</a>` : nothing}
        <button class="link danger" aria-label="Delete export ${job.id}" @click=${() => void this.deleteExport(job)}>Delete</button></td>
    </tr>`;
  }

  override render(): TemplateResult {
    const f = this.form;
    const choice = formatChoice(f.choice);
    const tol = this.tolerance;
    return this.frame(
      "Export",
      "export-dialog",
      html`<form class="fields" @submit=${(e: Event) => { e.preventDefault(); void this.start(); }}>
          <label class="field"><span>Format</span>
            <select name="format" @change=${(e: Event) => { this.set({ choice: (e.target as HTMLSelectElement).value }); }}>
              ${FORMAT_CHOICES.map((c) => html`<option value=${c.id} ?selected=${c.id === f.choice}>${c.name}</option>`)}
            </select>
          </label>
          ${choice.polygons && tol
            ? html`<label class="field"><span>Polygon tolerance (px, ${tol.min}–${tol.max})</span>
                <input type="number" min=${tol.min} max=${tol.max} step=${optionStep(tol)} .value=${String(f.tolerance)}
                  @change=${(e: Event) => { this.set({ tolerance: clampOption(Number((e.target as HTMLInputElement).value), tol) }); }} /></label>`
            : nothing}
          ${choice.split
            ? html`<label class="field"><span>Validation split (${Math.round(f.valSplit * 100)} % of images)</span>
                <input type="range" min="0" max="0.5" step="0.05" .value=${String(f.valSplit)} aria-label="Validation split"
                  @input=${(e: Event) => { this.set({ valSplit: Number((e.target as HTMLInputElement).value) }); }} /></label>`
            : nothing}
          ${this.checks("Image status (none: all)", STATUSES, f.status, (v) => String(v).replace("_", " "), (v, on) => { this.set({ status: toggle(f.status, String(v), on) }); })}
          ${this.checks("Review states", REVIEW_STATES, f.reviewStates, String, (v, on) => { this.set({ reviewStates: toggle(f.reviewStates, String(v), on) }); })}
          ${this.labels.length
            ? this.checks("Labels (none: all)", this.labels.map((l) => l.id), f.labels, (v) => this.labels.find((l) => l.id === v)?.name ?? String(v), (v, on) => { this.set({ labels: toggle(f.labels, Number(v), on) }); })
            : nothing}
          <label class="small"><input type="checkbox" .checked=${f.includeImages} @change=${(e: Event) => { this.set({ includeImages: checked(e) }); }} /> Include the image files</label>
          <div class="row"><button class="primary" type="submit" ?disabled=${this.busy || f.reviewStates.length === 0}>Start export</button>
            ${f.reviewStates.length === 0 ? html`<span class="small error">Pick at least one review state.</span>` : nothing}</div>
        </form>
        ${this.error.length ? html`<ul class="error" role="alert">${this.error.map((p) => html`<li>${p}</li>`)}</ul>` : nothing}
        <h3>History</h3>
        ${this.history.length
          ? html`<table class="history" aria-label="Export history"><tbody>${this.history.map((j) => this.historyRow(j))}</tbody></table>`
          : html`<p class="small muted">No exports yet.</p>`}`,
    );
  }
}
customElements.define("export-dialog", ExportDialog);
