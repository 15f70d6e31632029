import type { DecoderManifest, TensorSpec } from "../api/types";
import type { DecoderModelInfo } from "./protocol";

/** Preferred variants, best first: the fast two-graph decoder (per-image prepare, then about
 * half the work per click), its int8-upscaling form first (the server exports it only where
 * its masks pass a parity probe against the exact decoder: ViT models, not the tiny one),
 * then low-res output (thresholded and upscaled in the worker, no full-resolution upscaling
 * inside the graph); all candidate masks. Otherwise fp32 first: int8 loses accuracy on the
 * tiny model. */
export const VARIANT_PREFERENCE = [
  "fast_multi_int8up_tanh",
  "fast_multi",
  "lowres_multi",
  "lowres",
  "official_multi",
  "official",
  "lowres_multi_int8",
];

/** SAM 2.1's graphs (samapp.ml.sam2_onnx): the exact two-graph decoder first (per-image
 * prepare, then a lean click graph; samapp.ml.sam2_fast), then the int8 single graph, exported
 * only where its masks pass the parity probe against fp32, then the fp32 single graph. */
export const SAM2_VARIANT_PREFERENCE = ["fast_multi", "lowres_multi_int8", "lowres_multi"];

export function chooseVariant(manifest: DecoderManifest, preference?: string[]): string {
  const order = preference ?? (manifest.family === "sam2" ? SAM2_VARIANT_PREFERENCE : VARIANT_PREFERENCE);
  for (const name of order) if (manifest.variants[name]) return name;
  // Described by flags: low-res, multi-mask, fp32 first.
  const flagged = Object.entries(manifest.variants).filter(([, v]) => v.low_res !== undefined);
  const score = (v: DecoderManifest["variants"][string]): number =>
    (v.low_res ? 4 : 0) + (v.single_mask ? 0 : 2) + (v.int8 ? 0 : 1);
  flagged.sort((a, b) => score(b[1]) - score(a[1]));
  if (flagged[0]) return flagged[0][0];
  if (manifest.variants[manifest.default_variant]) return manifest.default_variant;
  const first = Object.keys(manifest.variants)[0];
  if (!first) throw new Error(`model ${manifest.model_key} has no decoder variants`);
  return first;
}

export function modelInfo(manifest: DecoderManifest, variantName: string): DecoderModelInfo {
  const variant = manifest.variants[variantName];
  if (!variant) throw new Error(`no variant ${variantName}`);
  const info: DecoderModelInfo = {
    modelKey: manifest.model_key,
    variant: variantName,
    url: variant.url,
    sha256: variant.sha256,
    imgSize: manifest.img_size,
    embeddingShape: manifest.embedding_shape,
    inputs: variant.inputs.map(tensorName),
    outputs: variant.outputs.map(tensorName),
  };
  if (manifest.offline_optimization) info.optimizedOffline = true;
  if (manifest.family === "sam2") {
    info.family = "sam2";
    info.extraInputs = Object.fromEntries(
      Object.entries(manifest.extra_inputs ?? {}).map(([name, shape]) => [name, [1, ...shape]]),
    );
  }
  if (variant.prepare) {
    const fallback = variant.mask_input_variant;
    if (!fallback || fallback === variantName || !manifest.variants[fallback]) {
      throw new Error(`variant ${variantName} lacks its mask-input variant ${fallback ?? "(none)"}`);
    }
    info.prepare = { url: variant.prepare.url, sha256: variant.prepare.sha256 };
    info.maskInputModel = modelInfo(manifest, fallback);
  }
  return info;
}


/** The graph optimisation a session of `info`'s graphs gets: none on WASM where the server
 * optimised them at export (the browser's own pass was most of a first session's cost); WebGPU
 * keeps its own, for the layout rewrites it makes for its kernels. */
export function sessionOptimization(info: Pick<DecoderModelInfo, "optimizedOffline">, webgpu: boolean): "disabled" | "all" {
  return info.optimizedOffline === true && !webgpu ? "disabled" : "all";
}

function tensorName(spec: string | TensorSpec): string {
  return typeof spec === "string" ? spec : spec.name;
}
