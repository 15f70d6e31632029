/** REST types. Generated: `schema.gen.ts` from the OpenAPI schema (`python manage.py api_ts`,
 * openapi-typescript) and `events.gen.ts` from the websocket contract (`python manage.py
 * events_ts`: the server builds annotations and job payloads with the same functions for
 * REST and the websocket). Declared here: the responses the schema does not describe yet
 * (decoder manifests, model versions). */
import type { components } from "./schema.gen";
import type {
  AnnotationPayload,
  AnnotationPrompts,
  RegistryModelPayload,
  SegmentProgress,
  TrainingProgress,
} from "./events.gen";
import type { CompressedRle } from "../sam/rle";

export type { ReviewState } from "./events.gen";


type Schemas = components["schemas"];
/** A response holds every field of its serializer; the schema marks fields that have a model
 * default as optional, which is true of requests only. */
type Output<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface User {
  id: number;
  username: string;
}

export type Label = Output<Schemas["LabelOutput"]>;
export type Role = Schemas["RoleEnum"];
export type Project = Output<Omit<Schemas["ProjectOutput"], "labels">> & {
  labels: Label[];
  /** Only in the answer for one project. */
  status_counts?: Record<string, number>;
  /** The model the project switches to once its download completes. */
  pending_model_key?: string | null;
};

/** One project as GET /api/projects/<id>/ answers: image counts, a pending model switch and
 * the bounds of every setting. */
export type ProjectDetail = Output<Omit<Schemas["ProjectDetailOutput"], "labels">> & { labels: Label[] };
export type SettingBound = Schemas["SettingBoundOutput"];
export type ReviewPolicy = Schemas["ReviewPolicyEnum"];
export type ProjectCreate = Schemas["ProjectCreateRequest"];
export type ProjectUpdate = Schemas["PatchedProjectUpdateRequest"];
export type LabelWithCount = Output<Schemas["LabelCountOutput"]>;
export type Member = Output<Schemas["MemberOutput"]>;
/** A pending invitation as the project's managers see it. */
export type ProjectInvitation = Output<Schemas["InvitationOutput"]>;
/** A pending invitation as the invited user sees it. */
export type MyInvitation = Output<Schemas["MyInvitationOutput"]>;
/** What deleting a label that annotations carry does to them. */
export type LabelDeletion =
  | { annotations: "delete" | "unlabel" }
  | { annotations: "reassign"; reassign_to: number };

/** A registry model and whether its checkpoint is on the server (GET /api/models/). */
export type RegistryModel = RegistryModelPayload;
export type ModelState = RegistryModel["state"];

export interface RegistryModels {
  results: RegistryModel[];
  default_model: string;
  can_download: boolean;
}

/** The decoder manifest's answer while an expected wait lasts (HTTP 202). */
export interface DecoderPending {
  status: "exporting" | "downloading";
  detail: string;
}
export type ImageStatus = Schemas["StatusEnum"];
export type ImageItem = Output<Schemas["ImageOutput"]>;
export type EmbeddingInfo = ImageItem["embedding"];
export type Annotation = AnnotationPayload;
export type AnnotationInput = Omit<Schemas["AnnotationInputRequest"], "rle" | "prompts" | "version"> & {
  rle: CompressedRle;
  prompts?: AnnotationPrompts;
};
export type Job = Output<Schemas["ExportJobOutput"]>;
export type SegmentJob = SegmentProgress;
export type TrainingJob = Omit<TrainingProgress, "loss_from">;
export type TrainingOptions = Schemas["TrainingJobListCreateInputRequest"];
export type EncoderMode = Schemas["EncoderModeEnum"];

export interface TensorSpec {
  name: string;
  dtype?: string;
  shape?: (number | string)[];
}

export interface DecoderFile {
  url: string;
  sha256: string;
  bytes: number;
  inputs: (string | TensorSpec)[];
  outputs: (string | TensorSpec)[];
}

export interface DecoderVariant extends DecoderFile {
  low_res?: boolean;
  single_mask?: boolean;
  int8?: boolean;
  /** A fast variant's per-image graph (samapp.ml.fast_decoder, samapp.ml.sam2_fast), run once
   * per embedding on its inputs by name (the embedding and, for SAM 2, its extra maps). */
  prepare?: DecoderFile;
  /** The variant for clicks with a mask input: a fast variant's click graph takes none. */
  mask_input_variant?: string;
  /** A lossy variant's agreement with the exact decoder on the server's probe (IoU of every
   * thresholded candidate mask). */
  parity?: { mean_iou: number; min_iou: number; masks: number };
}

export interface DecoderManifest {
  model_key: string;
  img_size: number;
  embedding_shape: number[];
  mask_input_size?: number[];
  default_variant: string;
  variants: Record<string, DecoderVariant>;
  /** Lossy variants the server did not export: their parity probe fell below the bar. */
  rejected?: Record<string, { reason: string; parity: { mean_iou: number; min_iou: number } }>;
  /** "sam2": the graphs also take `extra_inputs` (the packed embedding's high-resolution maps,
   * name -> [C, h, w]) and append SAM 2's padding point themselves. */
  family?: "sam" | "sam2";
  extra_inputs?: Record<string, number[]>;
  /** The onnxruntime level the graphs were optimised at when exported ("basic"; "" or absent:
   * not optimised): the browser's WASM sessions skip optimising them again. */
  offline_optimization?: string;
}

/** Held-out evaluation of a model version: mIoU after k simulated clicks, NoC. */
export interface EvaluationMetrics {
  objects?: number;
  clicks?: number;
  miou_1?: number;
  miou_3?: number;
  miou_5?: number;
  noc_85?: number;
  noc_90?: number;
}

export interface ModelVersion {
  id: number;
  number: number;
  model_key: string;
  base_model_key: string;
  parent_model_key: string;
  state: string;
  metrics: EvaluationMetrics;
  baseline_metrics: EvaluationMetrics;
  training_job: number | null;
  activated_at: string | null;
  created_at: string;
}
