/** Typed REST client: session cookie + CSRF header for writes, JSON in and out. */
import type {
  Annotation,
  AnnotationInput,
  DecoderManifest,
  DecoderPending,
  EmbeddingInfo,
  ImageItem,
  Label,
  LabelDeletion,
  LabelWithCount,
  Member,
  ModelVersion,
  MyInvitation,
  Page,
  Project,
  ProjectCreate,
  ProjectDetail,
  ProjectInvitation,
  ProjectUpdate,
  RegistryModel,
  RegistryModels,
  TrainingJob,
  TrainingOptions,
  User,
} from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

export function csrfToken(): string {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1] ?? "") : "";
}

function describe(body: unknown, status: number): string {
  if (body && typeof body === "object") {
    const detail = (body as { detail?: unknown }).detail;
    if (typeof detail === "string") return detail;
    return JSON.stringify(body);
  }
  return `HTTP ${status}`;
}

export async function request<T>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") {
    (init.headers as Record<string, string>)["X-CSRFToken"] = csrfToken();
  }
  if (body !== undefined) {
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, null, `network error: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, parsed, describe(parsed, response.status));
  return parsed as T;
}

const P = (projectId: number): string => `/api/projects/${projectId}`;

export function query(params: object): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : "";
}

export const api = {
  me: () => request<User>("GET", "/api/me/"),
  projects: (page = 1) => request<Page<Project>>("GET", `/api/projects/${query({ page })}`),
  project: (id: number) => request<Project>("GET", `${P(id)}/`),
  projectDetail: (id: number) => request<ProjectDetail>("GET", `${P(id)}/`),
  createProject: (data: ProjectCreate) => request<Project>("POST", "/api/projects/", data),
  updateProject: (id: number, data: ProjectUpdate) => request<ProjectDetail>("PATCH", `${P(id)}/`, data),
  deleteProject: (id: number) => request<undefined>("DELETE", `${P(id)}/`),
  labels: (projectId: number) =>
    request<Page<LabelWithCount>>("GET", `${P(projectId)}/labels/${query({ page_size: 500 })}`),
  createLabel: (projectId: number, name: string, color: string) =>
    request<Label>("POST", `${P(projectId)}/labels/`, { name, color }),
  updateLabel: (projectId: number, labelId: number, data: { name?: string; color?: string }) =>
    request<Label>("PATCH", `${P(projectId)}/labels/${labelId}/`, data),
  /** Without `choice` the server refuses (409) a label that annotations carry. */
  deleteLabel: (projectId: number, labelId: number, choice?: LabelDeletion) =>
    request<undefined>("DELETE", `${P(projectId)}/labels/${labelId}/${query({ ...choice })}`),
  members: (projectId: number) =>
    request<Page<Member>>("GET", `${P(projectId)}/members/${query({ page_size: 500 })}`),
  /** The answer is the same whether or not `username` names an account. */
  invite: (projectId: number, username: string, role: string) =>
    request<{ detail: string }>("POST", `${P(projectId)}/members/`, { username, role }),
  updateMember: (projectId: number, memberId: number, role: string) =>
    request<Member>("PATCH", `${P(projectId)}/members/${memberId}/`, { role }),
  removeMember: (projectId: number, memberId: number) =>
    request<undefined>("DELETE", `${P(projectId)}/members/${memberId}/`),
  leaveProject: (projectId: number) => request<undefined>("POST", `${P(projectId)}/leave/`, {}),
  projectInvitations: (projectId: number) =>
    request<Page<ProjectInvitation>>("GET", `${P(projectId)}/invitations/${query({ page_size: 500 })}`),
  revokeInvitation: (projectId: number, invitationId: number) =>
    request<undefined>("DELETE", `${P(projectId)}/invitations/${invitationId}/`),
  myInvitations: () => request<Page<MyInvitation>>("GET", `/api/invitations/${query({ page_size: 500 })}`),
  acceptInvitation: (id: number) => request<{ project: number; role: string }>("POST", `/api/invitations/${id}/`, {}),
  declineInvitation: (id: number) => request<undefined>("DELETE", `/api/invitations/${id}/`),
  images: (
    projectId: number,
    filters: { status?: string; assignee?: string | number; label?: string | number; page?: number; page_size?: number },
  ) => request<Page<ImageItem>>("GET", `${P(projectId)}/images/${query(filters)}`),
  image: (projectId: number, imageId: number) => request<ImageItem>("GET", `${P(projectId)}/images/${imageId}/`),
  updateImage: (projectId: number, imageId: number, data: { status?: string; assignee?: number | null }) =>
    request<ImageItem>("PATCH", `${P(projectId)}/images/${imageId}/`, data),
  imageFileUrl: (projectId: number, imageId: number) => `${P(projectId)}/images/${imageId}/file/`,
  requestEmbedding: (projectId: number, imageId: number) =>
    request<EmbeddingInfo>("POST", `${P(projectId)}/images/${imageId}/embedding/`, {}),
  embeddingUrl: (modelKey: string, sha256: string) => `/api/embeddings/${modelKey}/${sha256}/`,
  /** The manifest, or (HTTP 202) the state of an expected wait: downloading, exporting. */
  decoder: (modelKey: string) =>
    request<DecoderManifest | DecoderPending>("GET", `/api/models/${modelKey}/decoder/`),
  models: () => request<RegistryModels>("GET", "/api/models/"),
  downloadModel: (modelKey: string) => request<RegistryModel>("POST", `/api/models/${modelKey}/download/`, {}),
  /** Switch the project's model: applied when present, else pending until its download ends. */
  setProjectModel: (projectId: number, modelKey: string) =>
    request<Project>("PATCH", `${P(projectId)}/`, { default_model_key: modelKey }),
  annotations: async (projectId: number, imageId: number): Promise<Annotation[]> => {
    const all: Annotation[] = [];
    let url: string | null = `${P(projectId)}/images/${imageId}/annotations/?page_size=500`;
    while (url) {
      const page: Page<Annotation> = await request<Page<Annotation>>("GET", url);
      all.push(...page.results);
      url = page.next;
    }
    return all;
  },
  createAnnotation: (projectId: number, imageId: number, data: AnnotationInput) =>
    request<Annotation>("POST", `${P(projectId)}/images/${imageId}/annotations/`, data),
  updateAnnotation: (projectId: number, annotationId: number, version: number, data: Partial<AnnotationInput>) =>
    request<Annotation>("PATCH", `${P(projectId)}/annotations/${annotationId}/`, data, { "If-Match": `"${version}"` }),
  deleteAnnotation: (projectId: number, annotationId: number, version: number) =>
    request<undefined>("DELETE", `${P(projectId)}/annotations/${annotationId}/`, undefined, { "If-Match": `"${version}"` }),
  modelVersions: (projectId: number) =>
    request<{ active_model_key: string; results: ModelVersion[] }>("GET", `${P(projectId)}/model-versions/`),
  activateModelVersion: (projectId: number, versionId: number) =>
    request<ModelVersion>("POST", `${P(projectId)}/model-versions/${versionId}/activate/`, {}),
  rollbackModel: (projectId: number) =>
    request<{ active_model_key: string }>("POST", `${P(projectId)}/model-versions/rollback/`, {}),
  trainingJobs: (projectId: number) => request<{ results: TrainingJob[] }>("GET", `${P(projectId)}/training-jobs/`),
  startTraining: (projectId: number, options: TrainingOptions) =>
    request<TrainingJob>("POST", `${P(projectId)}/training-jobs/`, options),
};
