/// <reference lib="webworker" />
/** The decoder worker's entry: one `DecoderContext` on onnxruntime's WASM build (WebGPU loaded
 * on demand), served on the worker's own scope (see decoderContext.ts). */
import * as ortWasm from "onnxruntime-web/wasm";
import { DecoderContext, serve, type Ort, type WorkerPort, type WorkerScope } from "./decoderContext";

const scope = globalThis as unknown as WorkerScope & WorkerPort;
const loadWebgpu = async (): Promise<Ort> => await import("onnxruntime-web/webgpu");
serve(scope, new DecoderContext(ortWasm, scope, loadWebgpu));
