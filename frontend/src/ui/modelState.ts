/** How the Models page words a registry model's availability. */
import type { RegistryModel } from "../api/types";

export function megabytes(bytes: number | null): string {
  return bytes === null ? "—" : `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}

/** The registry model behind a project's key: "sam_tiny-p3v2" and "sam_tiny-p3v2e" (a
 * version with its own image encoder) run on sam_tiny (`samapp/ml/model_keys.py`). */
export function baseModelKey(key: string): string {
  return key.replace(/-p\d+v\d+e?$/, "");
}

/** One line for a model's state, as the page shows it. */
export function modelStateText(model: RegistryModel): string {
  switch (model.state) {
    case "downloading":
      return `downloading ${megabytes(model.bytes_done)} of ${megabytes(model.bytes_total)}${model.percent === null ? "" : ` (${model.percent.toFixed(0)} %)`}`;
    case "verifying":
      return "verifying the checksum";
    case "present":
      return "on this server";
    case "failed":
      return `download failed: ${model.error}`;
    default:
      return model.downloadable ? "not downloaded" : model.error || "missing";
  }
}
