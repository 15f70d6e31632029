import { describe, expect, it } from "vitest";
import { createTransport, errorMessage, type HttpRequest, type HttpResponse, type TransportOptions } from "./transport";

const OPTIONS: TransportOptions = { singleRequestBytes: 10, retries: 2, backoff: () => 0 };

function blobFile(name: string, size: number): File {
  return new File([new Uint8Array(size).map((_, i) => i % 251)], name);
}

/** A fake server for the chunked protocol, with scripted failures. */
function fakeServer(chunkSize: number, script: Record<number, HttpResponse> = {}) {
  const log: string[] = [];
  let received = 0;
  let size = 0;
  let call = 0;
  const send = async (request: HttpRequest): Promise<HttpResponse> => {
    call++;
    log.push(`${request.method} ${request.url}${request.headers?.["Upload-Offset"] ? ` @${request.headers["Upload-Offset"]}` : ""}`);
    const scripted = script[call];
    if (scripted) return scripted;
    if (request.method === "POST" && request.url.endsWith("/uploads/")) {
      size = JSON.parse(request.body as string).size;
      return { status: 201, body: { id: "u1", offset: 0, chunk_size: chunkSize } };
    }
    if (request.method === "GET") return { status: 200, body: { id: "u1", offset: received, chunk_size: chunkSize } };
    if (request.method === "DELETE") return { status: 204, body: null };
    const offset = Number(request.headers?.["Upload-Offset"]);
    if (offset !== received) return { status: 409, body: { detail: "wrong offset", offset: received } };
    const body = request.body as Blob;
    request.onProgress?.(body.size);
    received += body.size;
    const done = received === size;
    const result = done ? { created: [{ id: 9, original_name: "big.png" }], duplicates: [] } : null;
    return { status: 200, body: { id: "u1", offset: received, chunk_size: chunkSize, result } };
  };
  return { send, log, received: () => received };
}

describe("createTransport", () => {
  it("sends a small file in one POST and a big one in chunks", async () => {
    const server = fakeServer(4);
    const transport = createTransport(3, server.send, OPTIONS);
    const progress: number[] = [];
    const outcome = await transport(blobFile("big.png", 11), (n) => progress.push(n), new AbortController().signal);
    expect(outcome.created[0]?.id).toBe(9);
    expect(server.log).toEqual([
      "POST /api/projects/3/uploads/",
      "PATCH /api/projects/3/uploads/u1/ @0",
      "PATCH /api/projects/3/uploads/u1/ @4",
      "PATCH /api/projects/3/uploads/u1/ @8",
    ]);
    expect(Math.max(...progress)).toBe(11);

    const small = fakeServer(4, { 1: { status: 201, body: { created: [], duplicates: [{ name: "s.png", existing_id: 2 }] } } });
    const answer = await createTransport(3, small.send, OPTIONS)(blobFile("s.png", 10), () => undefined, new AbortController().signal);
    expect(small.log).toEqual(["POST /api/projects/3/images/"]);
    expect(answer.duplicates[0]?.existing_id).toBe(2);
  });

  it("resumes from the server's offset after a dropped connection and after a 409", async () => {
    // call 3 (the second chunk) never gets an answer; the client asks where to resume
    const server = fakeServer(4, { 3: { status: 0, body: null } });
    const outcome = await createTransport(3, server.send, OPTIONS)(blobFile("big.png", 11), () => undefined, new AbortController().signal);
    expect(outcome.created).toHaveLength(1);
    expect(server.log.slice(2)).toEqual([
      "PATCH /api/projects/3/uploads/u1/ @4",
      "GET /api/projects/3/uploads/u1/",
      "PATCH /api/projects/3/uploads/u1/ @4",
      "PATCH /api/projects/3/uploads/u1/ @8",
    ]);
    const conflict = fakeServer(4, { 3: { status: 409, body: { detail: "x", offset: 0 } } });
    await createTransport(3, conflict.send, OPTIONS)(blobFile("big.png", 11), () => undefined, new AbortController().signal);
    expect(conflict.log.slice(2, 4)).toEqual(["PATCH /api/projects/3/uploads/u1/ @4", "PATCH /api/projects/3/uploads/u1/ @0"]);
  });

  it("gives up after the retries, shows the server's message, and drops the session", async () => {
    const down = { status: 0, body: null };
    const server = fakeServer(4, { 2: down, 3: down, 4: down, 5: down, 6: down, 7: down });
    const failing = createTransport(3, server.send, OPTIONS)(blobFile("big.png", 11), () => undefined, new AbortController().signal);
    await expect(failing).rejects.toThrow("The connection to the server failed.");
    expect(server.log.at(-1)).toBe("DELETE /api/projects/3/uploads/u1/");

    const hostile = fakeServer(4, { 4: { status: 400, body: { detail: "big.png: archive rejected: ../x: path leaves the archive ('..')" } } });
    const rejected = createTransport(3, hostile.send, OPTIONS)(blobFile("big.png", 11), () => undefined, new AbortController().signal);
    await expect(rejected).rejects.toThrow("path leaves the archive");
  });

  it("cancels between chunks with an AbortError and drops the session", async () => {
    const controller = new AbortController();
    const server = fakeServer(4);
    const send = async (request: HttpRequest): Promise<HttpResponse> => {
      const response = await server.send(request);
      if (request.headers?.["Upload-Offset"] === "4") controller.abort();
      return response;
    };
    const cancelled = createTransport(3, send, OPTIONS)(blobFile("big.png", 11), () => undefined, controller.signal);
    await expect(cancelled).rejects.toMatchObject({ name: "AbortError" });
    expect(server.log.at(-1)).toBe("DELETE /api/projects/3/uploads/u1/");
    expect(server.received()).toBe(8);
  });

  it("turns answers into messages", () => {
    expect(errorMessage({ status: 403, body: { detail: "Your role (viewer) cannot manage in this project." } })).toContain("viewer");
    expect(errorMessage({ status: 400, body: { detail: "Invalid input.", errors: { size: ["too big"] } } })).toBe("Invalid input. size: too big");
    expect(errorMessage({ status: 413, body: "<html>" })).toBe("The file is too large for the server.");
    expect(errorMessage({ status: 502, body: null })).toBe("The server answered HTTP 502.");
  });
});
