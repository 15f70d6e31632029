/** The decoder worker's message loop, apart from onnxruntime: each request goes to the
 * handler of its action, and the reply is `{ok: true, ...result}` or `{ok: false, error}`. */
import type { Failure, RequestFor, Results, WorkerAction, WorkerRequest, WorkerResponse } from "./protocol";

/** An error that the reply describes beyond its message. */
export class DecoderError extends Error {
  constructor(
    message: string,
    readonly details: Pick<Failure, "cancelled" | "status" | "embeddingStatus"> = {},
  ) {
    super(message);
  }
}

export interface Handled<A extends WorkerAction> {
  result: Results[A];
  /** Buffers moved to the UI thread with the reply. */
  transfer?: Transferable[];
}

export type Handlers = {
  [A in WorkerAction]: (request: RequestFor<A>) => Promise<Handled<A>> | Handled<A>;
};

export interface Outgoing {
  response: WorkerResponse;
  transfer: Transferable[];
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function dispatch(handlers: Handlers, request: WorkerRequest): Promise<Outgoing> {
  const { id, action } = request;
  try {
    const handler = handlers[action] as (r: WorkerRequest) => Promise<Handled<WorkerAction>> | Handled<WorkerAction>;
    const { result, transfer = [] } = await handler.call(handlers, request);
    return { response: { ...result, id, action, ok: true } as WorkerResponse, transfer };
  } catch (error) {
    const details = error instanceof DecoderError ? error.details : {};
    return { response: { id, action, ok: false, error: errorText(error), ...details }, transfer: [] };
  }
}
