/** Models page: the registry models on this server (absent / downloading / verifying /
 * present / failed, live over the websocket) with download and "use for this project" for
 * managers; then the data engine's model-in-the-loop step: the project's model versions with
 * their held-out evaluation as a table and a plot, fine-tuning jobs with live progress and
 * loss curve, and, for managers, starting a job, activating a version and rolling back. */
import { html, nothing, svg, type TemplateResult } from "lit";
import { api } from "../api/client";
import type { EncoderMode, EvaluationMetrics, ModelVersion, Project, RegistryModel, TrainingJob } from "../api/types";
import type { ServerEvent, TrainingProgress } from "../api/events.gen";
import { EVALUATED_CLICKS, clickX, lossPoints, miouPoints, miouY, type PlotBox } from "./plots";
import { baseModelKey, megabytes, modelStateText } from "./modelState";
import { projectNav } from "./projectNav";
import { ProjectRoomPage } from "./roomPage";

const MIOU_PLOT: PlotBox = { width: 360, height: 220, pad: 28 };
const LOSS_PLOT: PlotBox = { width: 360, height: 90, pad: 6 };
const SERIES_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4"];
const MANAGER_ROLES = new Set(["owner", "manager"]);
/** What a fine-tuning job trains (`encoder_mode`); the encoder modes embed every image again. */
const TRAINED: [EncoderMode, string][] = [
  ["frozen", "the mask decoder"],
  ["lora", "decoder + LoRA adapters"],
  ["blocks", "decoder + last encoder blocks"],
];
const METRIC_ROWS: [keyof EvaluationMetrics, string][] = [
  ["miou_1", "mIoU@1"],
  ["miou_3", "mIoU@3"],
  ["miou_5", "mIoU@5"],
  ["noc_85", "NoC@85"],
  ["noc_90", "NoC@90"],
];

function metric(value: number | undefined): string {
  return value === undefined ? "—" : value.toFixed(3);
}

export class ModelsPage extends ProjectRoomPage {
  private project: Project | null = null;
  private versions: ModelVersion[] = [];
  private activeKey = "";
  private jobs: TrainingJob[] = [];
  private serverModels: RegistryModel[] = [];
  private canDownload = false;
  private steps = 300;
  private encoderMode: EncoderMode = "frozen";
  private error = "";
  private notice = "";
  private busy = false;

  private get canManage(): boolean {
    return MANAGER_ROLES.has(this.project?.role ?? "");
  }

  protected override onEvent(event: ServerEvent): void {
    if (event.event === "job.progress" && event.payload.kind === "training") {
      this.mergeProgress(event.payload);
    } else if (event.event === "model.activated") {
      this.project = null;
      void this.load();
    } else if (event.event === "model.download") {
      this.mergeModel(event.payload);
    }
  }

  /** The registry model the project's model runs on (a version runs on its base). */
  private get currentKey(): string {
    return baseModelKey(this.project?.default_model_key ?? "");
  }

  private currentModel(): RegistryModel | undefined {
    return this.serverModels.find((m) => m.key === this.currentKey);
  }

  /** What a job can train on the project's model: the image encoder adapts on SAM models only. */
  private trainable(): [EncoderMode, string][] {
    return this.currentModel()?.family === "sam" ? TRAINED : TRAINED.filter(([mode]) => mode === "frozen");
  }

  /** The choice made, while the project's model offers it (a manager may switch models). */
  private chosenMode(): EncoderMode {
    return this.trainable().some(([mode]) => mode === this.encoderMode) ? this.encoderMode : "frozen";
  }

  private mergeModel(model: RegistryModel): void {
    const index = this.serverModels.findIndex((m) => m.key === model.key);
    if (index < 0) return;
    this.serverModels[index] = model;
    if (model.state === "present" && this.project?.pending_model_key === model.key) this.project = null;
    this.requestUpdate();
  }

  private mergeProgress(progress: TrainingProgress): void {
    const job = this.jobs.find((j) => j.id === progress.id);
    if (!job) {
      void this.load();
      return;
    }
    job.state = progress.state;
    job.progress = progress.progress;
    job.error = progress.error;
    if (progress.loss_from !== undefined) {
      job.loss_curve = [...job.loss_curve.slice(0, progress.loss_from), ...progress.loss_curve];
    }
    if (progress.state === "done" || progress.state === "failed") void this.load();
    this.requestUpdate();
  }

  protected override async load(): Promise<void> {
    try {
      this.project ??= await api.project(this.projectId);
      const [versions, jobs, models] = await Promise.all([
        api.modelVersions(this.projectId),
        api.trainingJobs(this.projectId),
        api.models(),
      ]);
      this.serverModels = models.results;
      this.canDownload = models.can_download;
      this.versions = versions.results;
      this.activeKey = versions.active_model_key;
      this.jobs = jobs.results;
      this.error = "";
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.requestUpdate();
  }

  private async act(action: () => Promise<unknown>, done: string): Promise<void> {
    this.busy = true;
    this.error = "";
    this.notice = "";
    this.requestUpdate();
    try {
      await action();
      this.notice = done;
      await this.load();
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this.busy = false;
    this.requestUpdate();
  }

  private renderServerModels(): TemplateResult {
    const current = this.currentKey;
    const pending = this.project?.pending_model_key ?? null;
    const notice = this.currentModel()?.notice;
    return html`${notice ? html`<div class="banner" role="note" data-testid="model-notice">${notice}</div>` : nothing}
      ${pending ? html`<p class="small" data-testid="pending-model">Switching to ${pending} when its download completes; ${current} stays in use until then.</p>` : nothing}
      <table class="versions" data-testid="server-models">
        <thead><tr><th>Model</th><th>Size</th><th>Runs on</th><th>State</th><th></th></tr></thead>
        <tbody>
          ${this.serverModels.map(
            (m) => html`<tr data-testid="server-model" data-key=${m.key} data-state=${m.state}>
              <td>${m.title} <span class="small muted">${m.key}</span>
                ${m.key === current ? html` <span class="badge">in use</span>` : nothing}</td>
              <td>${megabytes(m.size_bytes)}</td>
              <td class="small">${m.runs_on}</td>
              <td class="small">${modelStateText(m)}
                ${m.state === "downloading" || m.state === "verifying"
                  ? html`<progress max="100" .value=${m.percent ?? 0}></progress>`
                  : nothing}</td>
              <td>
                ${this.canDownload && m.downloadable && (m.state === "absent" || m.state === "failed")
                  ? html`<button ?disabled=${this.busy} data-testid="download-model"
                      @click=${() => void this.act(() => api.downloadModel(m.key), `Downloading ${m.title}…`)}>
                      ${m.state === "failed" ? "Retry download" : "Download"}</button>`
                  : nothing}
                ${this.canManage && m.key !== current && m.key !== pending && m.state !== "absent" && m.state !== "failed"
                  ? html`<button ?disabled=${this.busy} data-testid="use-model"
                      @click=${() => void this.act(() => this.useModel(m), m.state === "present" ? `${m.title} is in use.` : `Switching when ${m.title} is downloaded.`)}>
                      Use for this project</button>`
                  : nothing}
              </td>
            </tr>`,
          )}
        </tbody>
      </table>`;
  }

  private async useModel(model: RegistryModel): Promise<void> {
    this.project = await api.setProjectModel(this.projectId, model.key);
  }

  private renderJobs(): TemplateResult {
    const recent = this.jobs.slice(0, 5);
    if (recent.length === 0) return html`<p class="muted small">No fine-tuning job yet.</p>`;
    return html`<ul class="jobs" data-testid="training-jobs">
      ${recent.map((job) => {
        const loss = lossPoints(job.loss_curve, LOSS_PLOT);
        return html`<li data-testid="training-job" data-state=${job.state}>
          <div class="row">
            <strong>Job ${job.id}</strong>
            <span class="badge">${job.state}</span>
            <progress max="1" .value=${job.progress}></progress>
            <span class="small muted">
              ${job.train_images} train / ${job.held_out_images} held-out images
              ${job.seconds ? ` · ${job.seconds.toFixed(0)} s` : ""}
              ${job.model_key ? ` · ${job.model_key}` : ""}
            </span>
          </div>
          ${job.error ? html`<div class="banner error small">${job.error}</div>` : nothing}
          ${loss
            ? html`<svg class="plot" width=${LOSS_PLOT.width} height=${LOSS_PLOT.height} role="img"
                aria-label="training loss of job ${job.id}">
                <polyline fill="none" stroke="#d33" stroke-width="1.5" points=${loss}></polyline>
              </svg>`
            : nothing}
        </li>`;
      })}
    </ul>`;
  }

  private renderPlot(): TemplateResult {
    const box = MIOU_PLOT;
    const base = this.versions.at(-1)?.baseline_metrics;
    const series = this.versions.filter((v) => v.metrics.miou_1 !== undefined).slice(0, SERIES_COLORS.length);
    return html`<figure class="plot">
      <svg width=${box.width} height=${box.height} role="img" aria-label="held-out mIoU after 1, 3 and 5 clicks"
        data-testid="evaluation-plot">
        ${[0, 0.25, 0.5, 0.75, 1].map(
          (m) => svg`<line x1=${box.pad} x2=${box.width - box.pad} y1=${miouY(m, box)} y2=${miouY(m, box)} stroke="#444" stroke-width="0.5"></line>
            <text x="2" y=${miouY(m, box) + 4} font-size="10" fill="currentColor">${m.toFixed(2)}</text>`,
        )}
        ${EVALUATED_CLICKS.map(
          (c) => svg`<text x=${clickX(c, box) - 3} y=${box.height - 8} font-size="10" fill="currentColor">${c}</text>`,
        )}
        ${base
          ? svg`<polyline fill="none" stroke="#999" stroke-dasharray="4 3" stroke-width="2" points=${miouPoints(base, box)}></polyline>`
          : nothing}
        ${series.map(
          (v, i) => svg`<polyline fill="none" stroke=${SERIES_COLORS[i] ?? "#fff"} stroke-width="2"
            points=${miouPoints(v.metrics, box)}></polyline>`,
        )}
      </svg>
      <figcaption class="small">
        held-out mIoU after k clicks ·
        ${base ? html`<span style="color:#999">- - ${this.versions.at(-1)?.parent_model_key ?? "base"}</span>` : nothing}
        ${series.map((v, i) => html` <span style="color:${SERIES_COLORS[i] ?? "inherit"}">— v${v.number}</span>`)}
      </figcaption>
    </figure>`;
  }

  private renderVersions(): TemplateResult {
    if (this.versions.length === 0) {
      return html`<p class="muted small">No fine-tuned version yet: the project runs ${this.activeKey || "its base model"}.</p>`;
    }
    return html`<table class="versions" data-testid="model-versions">
      <thead>
        <tr>
          <th>Version</th>
          <th>State</th>
          ${METRIC_ROWS.map(([, title]) => html`<th>${title} before → after</th>`)}
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${this.versions.map(
          (v) => html`<tr data-testid="model-version" data-key=${v.model_key}>
            <td>v${v.number} <span class="small muted">${v.model_key}</span></td>
            <td>${v.state}${v.model_key === this.activeKey ? html` <span class="badge">in use</span>` : nothing}</td>
            ${METRIC_ROWS.map(
              ([key]) => html`<td>${metric(v.baseline_metrics[key])} → <strong>${metric(v.metrics[key])}</strong></td>`,
            )}
            <td>
              ${this.canManage && v.model_key !== this.activeKey && ["ready", "rejected", "rolled_back"].includes(v.state)
                ? html`<button ?disabled=${this.busy}
                    @click=${() => void this.act(() => api.activateModelVersion(this.projectId, v.id), `v${v.number} is active.`)}>
                    Activate</button>`
                : nothing}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  override render(): TemplateResult {
    const p = this.project;
    return html`<main class="page">
      ${projectNav(this.projectId, p?.name, "models")}
      <div class="toolbar">
        <h1>Models</h1>
        <span class="small muted" data-testid="active-model">in use: ${this.activeKey || p?.default_model_key || "…"}</span>
        <span class="spacer"></span>
        ${this.canManage
          ? html`<label class="small">steps
                <input type="number" min="1" max="100000" .value=${String(this.steps)}
                  @change=${(e: Event) => (this.steps = Number((e.target as HTMLInputElement).value))} />
              </label>
              <label class="small">train
                <select @change=${(e: Event) => { this.encoderMode = (e.target as HTMLSelectElement).value as EncoderMode; this.requestUpdate(); }}>
                  ${this.trainable().map(([mode, text]) => html`<option value=${mode} ?selected=${mode === this.chosenMode()}>${text}</option>`)}
                </select>
              </label>
              ${this.chosenMode() === "frozen" ? nothing : html`<span class="small muted">re-embeds every image</span>`}
              <button data-testid="start-training" ?disabled=${this.busy}
                @click=${() => void this.act(() => api.startTraining(this.projectId, { steps: this.steps, encoder_mode: this.chosenMode() }), "Fine-tuning started.")}>
                Fine-tune on accepted annotations</button>
              <button ?disabled=${this.busy || this.versions.length === 0}
                @click=${() => void this.act(() => api.rollbackModel(this.projectId), "Rolled back.")}>Roll back</button>`
          : nothing}
      </div>
      ${this.error ? html`<div class="banner error" role="alert">${this.error}</div>` : nothing}
      ${this.notice ? html`<div class="banner" role="status">${this.notice}</div>` : nothing}
      <section>
        <h2>Models on this server</h2>
        ${this.renderServerModels()}
      </section>
      <section>
        <h2>Held-out evaluation</h2>
        ${this.versions.length ? this.renderPlot() : nothing}
        ${this.renderVersions()}
      </section>
      <section>
        <h2>Fine-tuning jobs</h2>
        ${this.renderJobs()}
      </section>
    </main>`;
  }
}

customElements.define("models-page", ModelsPage);
