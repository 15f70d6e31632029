/** <segment-dialog>: segment everything on one image or several, with the thresholds the
 * server allows (read from its job options), each job's progress, and a truthful outcome.
 * Jobs run one after another: a member has only a couple of jobs in flight at a time. */
import { html, nothing, type TemplateResult } from "lit";
import type { SegmentJob } from "../api/types";
import { problemsOf, work, type JobOption } from "../api/work";
import { WorkDialog } from "./dialog";
import { clampOption, optionStep, segmentOutcome } from "./jobs";

const NAMES: Record<string, [string, string]> = {
  pred_iou_thresh: ["Predicted-IoU threshold", "Masks the model rates below this are dropped."],
  stability_score_thresh: ["Stability threshold", "Masks that change with the cut-off more than this are dropped."],
  points_per_side: ["Points per side", "A grid of n × n prompts: more finds smaller objects, and takes longer."],
  min_mask_region_area: ["Smallest region (px)", "Specks and holes smaller than this are removed."],
};
const POLL_MS = 700;

export class SegmentDialog extends WorkDialog {
  imageIds: number[] = [];
  static override properties = { ...WorkDialog.properties, imageIds: { attribute: false } };
  private options: Record<string, JobOption> = {};
  private values: Record<string, number> = {};
  private jobs: SegmentJob[] = [];
  private running = false;
  private error = "";
  private stopped = false;

  override connectedCallback(): void {
    super.connectedCallback();
    work.jobOptions(this.projectId).then(
      (o) => {
        this.options = o.segment;
        for (const [name, option] of Object.entries(o.segment)) if (option.default !== null) this.values[name] = option.default;
        this.requestUpdate();
      },
      (error: unknown) => { this.fail(error); },
    );
  }

  override disconnectedCallback(): void {
    this.stopped = true;
    super.disconnectedCallback();
  }

  private fail(error: unknown): void {
    this.error = problemsOf(error).join(" ");
    this.running = false;
    this.requestUpdate();
  }

  private async start(): Promise<void> {
    this.running = true;
    this.jobs = [];
    this.error = "";
    this.requestUpdate();
    try {
      for (const id of this.imageIds) {
        if (this.stopped) return;
        const job = await work.segment(this.projectId, id, this.values);
        this.jobs = [...this.jobs, job];
        await this.follow(job.id);
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    this.running = false;
    this.requestUpdate();
  }

  /** Poll one job until it ends (the room's events would do, but a dialog may be open on a
   * page that follows no room). */
  private async follow(jobId: number): Promise<void> {
    for (;;) {
      const job = await work.segmentJob(this.projectId, jobId);
      this.jobs = this.jobs.map((j) => (j.id === jobId ? job : j));
      this.requestUpdate();
      if (job.state === "done" || job.state === "failed" || this.stopped) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private field(name: string, option: JobOption): TemplateResult {
    const [label, hint] = NAMES[name] ?? [name, ""];
    const value = this.values[name];
    return html`<div class="field"><label class="field">
      <span>${label} <span class="small muted">(${option.min}–${option.max})</span></span>
      <input type="number" name=${name} min=${option.min} max=${option.max} step=${optionStep(option)} .value=${value === undefined ? "" : String(value)}
        placeholder="model default" ?disabled=${this.running} aria-describedby="hint-${name}"
        @change=${(e: Event) => {
          const input = e.target as HTMLInputElement;
          if (input.value === "") this.values = Object.fromEntries(Object.entries(this.values).filter(([key]) => key !== name));
          else this.values[name] = clampOption(Number(input.value), option);
          input.value = this.values[name] === undefined ? "" : String(this.values[name]);
        }} /></label>
      <span class="small muted" id="hint-${name}">${hint}</span>
    </div>`;
  }

  override render(): TemplateResult {
    const n = this.imageIds.length;
    const finished = this.jobs.filter((j) => j.state === "done" || j.state === "failed").length;
    const current = this.jobs.find((j) => j.state === "queued" || j.state === "running");
    const progress = n ? (finished + (current?.progress ?? 0)) / n : 0;
    const outcome = segmentOutcome(this.jobs);
    return this.frame(
      n === 1 ? "Segment everything" : `Segment everything on ${n} images`,
      "segment-dialog",
      html`<p class="small muted">Proposals land “proposed”, for review; they never replace your annotations.</p>
        <form class="fields" @submit=${(e: Event) => { e.preventDefault(); void this.start(); }}>
          ${Object.entries(this.options).map(([name, option]) => this.field(name, option))}
          <div class="row"><button class="primary" type="submit" ?disabled=${this.running || n === 0 || !Object.keys(this.options).length}>Start</button></div>
        </form>
        ${this.jobs.length
          ? html`<p class="row"><progress max="1" .value=${progress} aria-label="Segment everything progress"></progress>
              <span class="small" role="status">${this.running ? `${finished} / ${n} images…` : `${finished} / ${n} images done.`}</span></p>`
          : nothing}
        ${outcome && !this.running ? html`<p role="status" data-testid="segment-outcome">${outcome}</p>` : nothing}
        ${outcome.includes("ready") && !this.running
          ? html`<p><a href="/projects/${this.projectId}/review" @click=${() => { this.close(); }}>Review the proposals</a></p>`
          : nothing}
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}`,
    );
  }
}
customElements.define("segment-dialog", SegmentDialog);
