/** REST calls of the work pages: queue, assignment, review with reasons, job options,
 * segment jobs, export history and dataset import. */
import { ApiError, csrfToken, query, request } from "./client";
import type { components } from "./schema.gen";
import type { Annotation, ImageItem, Job, Page, ReviewState, SegmentJob } from "./types";

type Schemas = components["schemas"];
type Output<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

export type Member = Output<Schemas["MemberOutput"]>;
export type QueueImage = Output<Schemas["QueueImageOutput"]>;
export type Rejection = Output<Schemas["RejectionOutput"]>;
export type QueueNext = QueueImage & { rejections: Rejection[] };
export type JobOption = Schemas["JobOptionOutput"];
export type JobOptions = Schemas["JobOptionsOutput"];
export type ExportFormat = Schemas["FormatEnum"];

export interface AnnotationFilters {
  review_state?: ReviewState | "";
  author?: number | "";
  label?: number | "";
  image?: number | "";
}

export interface ImportResult {
  format: string;
  images_created: number;
  images_existing: number;
  annotations_created: number;
  labels_created: string[];
  ignored: string[];
}

const P = (projectId: number): string => `/api/projects/${projectId}`;

/** Every page of a paginated list (bounded: a page list is never a download). */
async function all<T>(url: string, limit = 20): Promise<T[]> {
  const items: T[] = [];
  let next: string | null = url;
  for (let i = 0; next && i < limit; i++) {
    const page: Page<T> = await request<Page<T>>("GET", next);
    items.push(...page.results);
    next = page.next;
  }
  return items;
}

/** The server's messages for a failed request: its located problems, else its detail. */
export function problemsOf(error: unknown): string[] {
  if (error instanceof ApiError && error.body && typeof error.body === "object") {
    const problems = (error.body as { problems?: unknown }).problems;
    if (Array.isArray(problems) && problems.length > 0) return problems.map(String);
  }
  return [messageOf(error)];
}

/** What went wrong, for a person to read. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const work = {
  members: (projectId: number) => all<Member>(`${P(projectId)}/members/?page_size=200`),
  assign: (projectId: number, images: number[], assignee: number | null) =>
    request<Output<Schemas["ImageAssignOutput"]>>("POST", `${P(projectId)}/images/assign/`, { images, assignee }),
  queue: (projectId: number) => all<QueueImage>(`${P(projectId)}/queue/?page_size=200`),
  /** The first image of my queue, or null when it is empty (HTTP 204). */
  queueNext: async (projectId: number): Promise<QueueNext | null> =>
    (await request<QueueNext | undefined>("GET", `${P(projectId)}/queue/next/`)) ?? null,
  queueDone: (projectId: number, imageId: number) =>
    request<{ image: ImageItem; next: QueueNext | null }>("POST", `${P(projectId)}/queue/${imageId}/done/`),
  annotations: (projectId: number, filters: AnnotationFilters, pageSize = 200) =>
    request<Page<Annotation>>("GET", `${P(projectId)}/annotations/${query({ ...filters, page_size: pageSize })}`),
  review: (projectId: number, ids: number[], review_state: "accepted" | "rejected", reason = "") =>
    request<{ updated: number[]; unchanged: number[]; missing: number[] }>("POST", `${P(projectId)}/annotations/review/`, {
      ids,
      review_state,
      reason,
    }),
  jobOptions: (projectId: number) => request<JobOptions>("GET", `${P(projectId)}/job-options/`),
  segment: (projectId: number, imageId: number, options: Record<string, number>) =>
    request<SegmentJob>("POST", `${P(projectId)}/images/${imageId}/segment-everything/`, options),
  segmentJob: (projectId: number, jobId: number) => request<SegmentJob>("GET", `${P(projectId)}/segment-jobs/${jobId}/`),
  exports: (projectId: number) => request<Page<Job>>("GET", `${P(projectId)}/exports/?page_size=50`),
  startExport: (projectId: number, format: ExportFormat, options: Record<string, unknown>) =>
    request<Job>("POST", `${P(projectId)}/exports/`, { format, options }),
  exportJob: (projectId: number, jobId: number) => request<Job>("GET", `${P(projectId)}/exports/${jobId}/`),
  deleteExport: (projectId: number, jobId: number) => request<undefined>("DELETE", `${P(projectId)}/exports/${jobId}/`),
  importDataset: async (projectId: number, file: File, format: string): Promise<ImportResult> => {
    const body = new FormData();
    body.append("file", file);
    if (format) body.append("format", format);
    const response = await fetch(`${P(projectId)}/imports/`, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      body,
    });
    const parsed: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = (parsed as { detail?: unknown } | null)?.detail;
      throw new ApiError(response.status, parsed, typeof detail === "string" ? detail : `HTTP ${response.status}`);
    }
    return parsed as ImportResult;
  },
};
