/// <reference lib="webworker" />
/** The decoder worker: a dispatcher over one `DecoderContext` (see decoderContext.ts). */
import * as ortWasm from "onnxruntime-web/wasm";
import { DecoderContext, dispatch, type Ort, type WorkerScope } from "./decoderContext";
import type { WorkerRequest, WorkerResponse } from "./protocol";

const scope = globalThis as unknown as WorkerScope & {
  postMessage(message: WorkerResponse, transfer: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent<WorkerRequest>) => void): void;
};

const loadWebgpu = async (): Promise<Ort> => await import("onnxruntime-web/webgpu");
const context = new DecoderContext(ortWasm, scope, loadWebgpu);

scope.addEventListener("message", (event) => {
  void dispatch(context, event.data).then(({ response, transfer }) => { scope.postMessage(response, transfer); });
});
