/** Sends one file to the server: a plain multipart POST when it fits in one request, else the
 * chunked, resumable protocol (`/uploads/`): open a session, PATCH each chunk at the offset the
 * server holds, resume from the server's offset after a 409 or a dropped connection. */
import type { UploadOutcome, UploadSource, UploadTransport } from "./queue";

export interface HttpRequest {
  method: string;
  url: string;
  body?: Blob | FormData | string;
  headers?: Record<string, string>;
  onProgress?: (loaded: number) => void;
  signal: AbortSignal;
}

/** status 0: the request never got an answer (network down, connection dropped). */
export interface HttpResponse {
  status: number;
  body: unknown;
}

export type HttpSend = (request: HttpRequest) => Promise<HttpResponse>;

interface SessionBody {
  id: string;
  offset: number;
  chunk_size: number;
  result?: UploadOutcome | null;
}

export interface TransportOptions {
  /** Files up to this size go in one request; bigger ones in chunks. */
  singleRequestBytes: number;
  /** Attempts in a row without progress before a chunked upload gives up. */
  retries: number;
  /** Waits before the n-th retry (milliseconds). */
  backoff: (attempt: number) => number;
}

export const DEFAULT_TRANSPORT_OPTIONS: TransportOptions = {
  singleRequestBytes: 8 * 1024 * 1024,
  retries: 5,
  backoff: (attempt) => Math.min(500 * 2 ** attempt, 10_000),
};

/** Throws the upload's AbortError once `signal` has fired (checked after each await). */
function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError();
}

/** A response body: its JSON, else its text (null when empty). */
function parseBody(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function abortError(): Error {
  const error = new Error("Upload cancelled.");
  error.name = "AbortError";
  return error;
}

/** The server's message for a failed answer (`detail`, then the first field error). */
export function errorMessage(response: HttpResponse): string {
  const body = response.body as { detail?: unknown; errors?: Record<string, unknown> } | null;
  if (response.status === 0) return "The connection to the server failed.";
  if (body && typeof body === "object") {
    const fields = Object.entries(body.errors ?? {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : String(v)}`);
    if (typeof body.detail === "string") return [body.detail, ...fields].join(" ");
  }
  if (response.status === 413) return "The file is too large for the server.";
  return `The server answered HTTP ${response.status}.`;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(abortError());
    });
  });
}

function ok(response: HttpResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

export function createTransport(
  projectId: number,
  send: HttpSend,
  options: TransportOptions = DEFAULT_TRANSPORT_OPTIONS,
): UploadTransport {
  const base = `/api/projects/${projectId}`;

  async function single(file: UploadSource, onProgress: (n: number) => void, signal: AbortSignal): Promise<UploadOutcome> {
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await send({ method: "POST", url: `${base}/images/`, body: form, onProgress, signal });
    throwIfAborted(signal);
    if (!ok(response)) throw new Error(errorMessage(response));
    return response.body as UploadOutcome;
  }

  async function chunked(file: UploadSource, onProgress: (n: number) => void, signal: AbortSignal): Promise<UploadOutcome> {
    const opened = await send({
      method: "POST",
      url: `${base}/uploads/`,
      body: JSON.stringify({ name: file.name, size: file.size }),
      headers: { "Content-Type": "application/json" },
      signal,
    });
    throwIfAborted(signal);
    if (!ok(opened)) throw new Error(errorMessage(opened));
    const session = opened.body as SessionBody;
    const url = `${base}/uploads/${session.id}/`;
    try {
      return await sendChunks(file, session, url, onProgress, signal);
    } catch (error) {
      // Cancelled or given up: the server drops the session and its chunks now, not at expiry.
      void send({ method: "DELETE", url, signal: new AbortController().signal }).catch(() => undefined);
      throw error;
    }
  }

  async function sendChunks(
    file: UploadSource,
    session: SessionBody,
    url: string,
    onProgress: (n: number) => void,
    signal: AbortSignal,
  ): Promise<UploadOutcome> {
    let offset = session.offset;
    let failures = 0;
    for (;;) {
      throwIfAborted(signal);
      const start = offset;
      const body = file.slice(start, Math.min(start + session.chunk_size, file.size));
      const response = await send({
        method: "PATCH",
        url,
        body,
        headers: { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(start) },
        onProgress: (loaded) => { onProgress(start + loaded); },
        signal,
      });
      throwIfAborted(signal);
      if (ok(response)) {
        const answer = response.body as SessionBody;
        if (answer.result) return answer.result;
        offset = answer.offset;
        failures = 0;
        onProgress(offset);
        continue;
      }
      const held = (response.body as { offset?: unknown } | null)?.offset;
      if (response.status === 409 && typeof held === "number") {
        offset = held; // the server holds more (or less) than we thought: go on from there
        continue;
      }
      if (response.status !== 0 && response.status < 500) throw new Error(errorMessage(response));
      if (++failures > options.retries) throw new Error(errorMessage(response));
      await wait(options.backoff(failures), signal);
      const status = await send({ method: "GET", url, signal });
      throwIfAborted(signal);
      if (ok(status)) offset = (status.body as SessionBody).offset;
      else if (status.status !== 0 && status.status < 500) throw new Error(errorMessage(status));
    }
  }

  return (file, onProgress, signal) =>
    file.size <= options.singleRequestBytes ? single(file, onProgress, signal) : chunked(file, onProgress, signal);
}

/** HttpSend over XMLHttpRequest (fetch reports no upload progress): same-origin session
 * cookie, CSRF header on writes. */
export function xhrSend(csrfToken: () => string): HttpSend {
  return (request) =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(request.method, request.url);
      xhr.responseType = "text";
      xhr.setRequestHeader("Accept", "application/json");
      if (request.method !== "GET") xhr.setRequestHeader("X-CSRFToken", csrfToken());
      for (const [name, value] of Object.entries(request.headers ?? {})) xhr.setRequestHeader(name, value);
      if (request.onProgress) {
        const report = request.onProgress;
        xhr.upload.onprogress = (event) => { report(event.loaded); };
      }
      const onAbort = (): void => { xhr.abort(); };
      request.signal.addEventListener("abort", onAbort);
      xhr.onloadend = () => {
        request.signal.removeEventListener("abort", onAbort);
        if (request.signal.aborted) {
          reject(abortError());
          return;
        }
        resolve({ status: xhr.status, body: parseBody(xhr.responseText) });
      };
      xhr.send(request.body ?? null);
    });
}
