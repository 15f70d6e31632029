import type { CompressedRle } from "../sam/rle";

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

export interface Label {
  id: number;
  name: string;
  color: string;
}

export type Role = "owner" | "manager" | "annotator" | "reviewer" | "viewer";

export interface Project {
  id: number;
  name: string;
  description: string;
  default_model_key: string;
  labels: Label[];
  role: Role | null;
  status_counts?: Record<string, number>;
  /** The model the project switches to once its download completes. */
  pending_model_key?: string | null;
}

export type ModelState = "absent" | "downloading" | "verifying" | "present" | "failed";

/** A registry model and whether its checkpoint is on the server (GET /api/models/). */
export interface RegistryModel {
  key: string;
  title: string;
  state: ModelState;
  bytes_done: number;
  bytes_total: number | null;
  percent: number | null;
  error: string;
  downloadable: boolean;
  size_bytes: number | null;
  runs_on: string;
  licence: string;
  source: string;
  automatic_defaults: Record<string, number>;
  /** What users should know about the model (the offline demo model says so). */
  notice: string;
}

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

export type ImageStatus = "new" | "in_progress" | "done" | "reviewed";

export interface EmbeddingInfo {
  status: string;
  url: string | null;
  error: string | null;
  model_key?: string;
}

export interface ImageItem {
  id: number;
  original_name: string;
  sha256: string;
  width: number;
  height: number;
  status: ImageStatus;
  assignee: number | null;
  embedding?: EmbeddingInfo | null;
}

export type AnnotationSource = "click" | "box" | "manual" | "automatic" | "imported";
export type ReviewState = "proposed" | "accepted" | "rejected";

export interface AnnotationPrompts {
  points?: [number, number][];
  labels?: number[];
  box?: [number, number, number, number] | null;
}

export interface Annotation {
  id: number;
  image: number;
  label: number | null;
  rle: CompressedRle;
  bbox: number[];
  area: number;
  predicted_iou: number | null;
  source: AnnotationSource;
  prompts: AnnotationPrompts;
  model_key: string;
  author: number | null;
  version: number;
  review_state: ReviewState;
  created_at: string;
  updated_at: string;
}

export interface AnnotationInput {
  label: number | null;
  rle: CompressedRle;
  predicted_iou?: number | null;
  source?: AnnotationSource;
  prompts?: AnnotationPrompts;
  model_key?: string;
  review_state?: ReviewState;
}

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
  /** A fast variant's per-image graph (samapp.ml.fast_decoder), run once per embedding. */
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
}

export interface Job {
  id: number;
  state: string;
  progress: number;
  download_url?: string | null;
  error?: string | null;
}

/** Held-out evaluation of a model version (issue 8): mIoU after k simulated clicks, NoC. */
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

export interface TrainingJob {
  kind: "training";
  id: number;
  state: string;
  progress: number;
  error: string;
  base_model_key: string;
  train_images: number;
  train_objects: number;
  held_out_images: number;
  held_out_objects: number;
  seconds: number | null;
  loss_curve: number[];
  model_version: number | null;
  model_key: string | null;
}
