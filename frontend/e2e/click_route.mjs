// The traced click, read with Chromium's debugger: the call stacks (async parts included) that
// carry one click on the image to the decoder worker, the decode inside the worker, and the
// accepted mask to its POST. Each stack frame is mapped back to its source file through the
// source maps of a second build of the bundle, checked byte for byte against the one served.
//
// Started by tests/e2e/test_click_route.py; reads its scenario from SAM_E2E_CONFIG:
//   { baseUrl, user: {username, password}, projectName, imageName, click: [x, y],
//     servedDir, mapsDir, sourceRoot, outFile }
// Writes { click: [files], decode: [files], save: [files], body } to outFile, the files relative
// to the repository and ordered from the outermost frame in.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { generatedPositionFor, LEAST_UPPER_BOUND, originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import { launchChromium, login, waitForMask } from "./lib.mjs";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG, "utf8"));
const staticPrefix = `${cfg.baseUrl}/static/app/`;

/** Every script of the build with its source map, keyed by its path under static/app. */
function loadBundles() {
  const bundles = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".js")) {
        const name = relative(cfg.mapsDir, path);
        const served = readFileSync(join(cfg.servedDir, name));
        if (!served.equals(readFileSync(path))) throw new Error(`static/app/${name} is not the build of frontend/src: rebuild it`);
        bundles.set(name, new TraceMap(readFileSync(`${path}.map`, "utf8"), `${path}.map`));
      }
    }
  };
  walk(cfg.mapsDir);
  return bundles;
}

const bundles = loadBundles();

/** The repository path of a map's source, or null for code outside frontend/src. Sources are
 * named from the part after their last `src/`: the worker's maps resolve them against another
 * folder than the app's. */
function repoPath(source) {
  const match = /(?:^|\/)src\/(?!.*\/src\/)(.*)$/.exec(source);
  return match && !source.includes("node_modules") ? `frontend/src/${match[1]}` : null;
}

/** Where to stop: the generated position of `call` on the one source line of `file` that
 * contains `statement`. */
function tracePoint(file, statement, call) {
  const lines = readFileSync(join(cfg.sourceRoot, file), "utf8").split("\n");
  const line = lines.findIndex((text) => text.includes(statement));
  if (line < 0 || lines.findLastIndex((text) => text.includes(statement)) !== line) throw new Error(`no single line of ${file} holds ${statement}`);
  for (const [name, map] of bundles) {
    const source = map.sources.find((s) => s && repoPath(s) === file);
    if (!source) continue;
    const at = generatedPositionFor(map, { source, line: line + 1, column: lines[line].indexOf(call), bias: LEAST_UPPER_BOUND });
    // The shell loads app.js with a version query.
    const urlRegex = `^${(staticPrefix + name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\?.*)?$`;
    if (at.line !== null) return { urlRegex, lineNumber: at.line - 1, columnNumber: at.column };
  }
  throw new Error(`${file} is in no bundle`);
}

/** The source files of a paused stack, outermost first, each once. */
function stackFiles(paused) {
  const frames = [];
  for (let trace = paused; trace; trace = trace.parent) frames.push(...trace.callFrames);
  const files = [];
  for (const frame of frames.reverse()) {
    const map = frame.url.startsWith(staticPrefix) ? bundles.get(frame.url.slice(staticPrefix.length).split("?")[0]) : undefined;
    if (!map) continue;
    const original = originalPositionFor(map, { line: frame.lineNumber + 1, column: frame.columnNumber });
    const file = original.source ? repoPath(original.source) : null;
    if (file && !files.includes(file)) files.push(file);
  }
  return files;
}

/** The files of several stacks, in order of first appearance. */
function union(stacks) {
  return [...new Set(stacks.flat())];
}

/** Resolves once `ready()` holds (polled), or fails naming `what` after 60 s. */
async function until(ready, what) {
  for (const deadline = Date.now() + 60_000; !ready(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

/** Resolves once none of `debuggers` has stopped for `ms`. */
async function quiet(debuggers, ms = 500) {
  const count = () => debuggers.reduce((n, d) => n + d.pauses.length, 0);
  for (let seen = -1; seen !== count(); ) {
    seen = count();
    await new Promise((wake) => setTimeout(wake, ms));
  }
}

/** A debugger client for one target: the page's own session, or a worker reached through it. */
class Debugger {
  constructor(send) {
    this.send = send;
    this.scripts = new Map();
    this.pauses = [];
  }

  /** Keeps each pause's frames as {url, lineNumber, columnNumber}, the async parts chained
   * through `parent`, and resumes. */
  handle(method, params) {
    if (method === "Debugger.scriptParsed") this.scripts.set(params.scriptId, params.url);
    if (method !== "Debugger.paused") return;
    const withUrl = (frames) =>
      frames.map((f) => {
        const at = f.location ?? f; // paused frames nest their position; async ones do not
        return { url: f.url || this.scripts.get(at.scriptId) || "", lineNumber: at.lineNumber, columnNumber: at.columnNumber };
      });
    const paused = { callFrames: withUrl(params.callFrames) };
    let tail = paused;
    for (let trace = params.asyncStackTrace; trace; trace = trace.parent) {
      tail.parent = { callFrames: withUrl(trace.callFrames) };
      tail = tail.parent;
    }
    this.pauses.push(paused);
    void this.send("Debugger.resume");
  }

  async enable() {
    await this.send("Debugger.enable");
    await this.send("Debugger.setAsyncCallStackDepth", { maxDepth: 64 });
  }

  async stopAt(point) {
    const { breakpointId } = await this.send("Debugger.setBreakpointByUrl", point);
    return async () => { await this.send("Debugger.removeBreakpoint", { breakpointId }); };
  }
}

const browser = await launchChromium();
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await login(context, cfg.baseUrl, cfg.user, () => {});
  const cdp = await context.newCDPSession(page);
  const main = new Debugger((method, params) => cdp.send(method, params));
  for (const method of ["Debugger.scriptParsed", "Debugger.paused"]) cdp.on(method, (params) => { main.handle(method, params); });

  // The decoder worker, reached through the page's session (Playwright keeps its own).
  let nextId = 0;
  const answers = new Map();
  let worker = null;
  const workerReady = new Promise((found) => {
    cdp.on("Target.attachedToTarget", ({ sessionId, targetInfo }) => {
      if (targetInfo.type !== "worker" || !targetInfo.url.includes("decoder")) return;
      worker = new Debugger((method, params = {}) => {
        const id = ++nextId;
        const answered = new Promise((done) => answers.set(id, done));
        void cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) });
        return answered;
      });
      found(worker);
    });
  });
  cdp.on("Target.receivedMessageFromTarget", ({ message }) => {
    const data = JSON.parse(message);
    if (data.id !== undefined) answers.get(data.id)?.(data.result ?? {});
    else worker?.handle(data.method, data.params);
  });

  await page.goto(`${cfg.baseUrl}/`);
  await page.getByTestId("project-link").filter({ hasText: cfg.projectName }).first().click();
  await page.locator(`[data-testid=image-tile][data-name="${cfg.imageName}"]`).click();
  await page.waitForFunction(() => window.samStudio?.state().embedding === "ready" && window.samStudio.state().model, null, { timeout: 240_000 });
  await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  await main.enable();
  await (await workerReady).enable();

  // The pointer reaches the point first: its hover preview is the decode the click adopts.
  // The button goes down only once no stack has stopped for a while: input that reaches a
  // page paused in the debugger is dropped. Messages with other origins than the pointer's
  // events (a neighbour's embedding prefetched) are left out.
  const clears = [
    await main.stopAt(tracePoint("frontend/src/sam/decoderClient.ts", "this.worker.postMessage(", "postMessage")),
    await worker.stopAt(tracePoint("frontend/src/sam/decoderContext.ts", "const output = await this.exclusive(() => target.run(inputs))", "target.run")),
  ];
  const fromPointer = (files) => files.includes("frontend/src/annotate/view/pointer.ts");
  const [cx, cy] = await page.evaluate(([x, y]) => window.samStudio.imageToClient(x, y), cfg.click);
  await page.mouse.move(cx, cy);
  await until(() => worker.pauses.length > 0 && main.pauses.map(stackFiles).some(fromPointer), "the hover preview's decode");
  await quiet([main, worker]);
  const masks = await page.evaluate(() => window.samStudio.latencies.length);
  await page.mouse.down();
  await page.mouse.up();
  await waitForMask(page, masks);
  for (const clear of clears) await clear();
  const click = union(main.pauses.map(stackFiles).filter(fromPointer));
  const decode = union(worker.pauses.map(stackFiles));

  main.pauses.length = 0;
  const clearFetch = await main.stopAt(tracePoint("frontend/src/api/client.ts", "response = await fetch(url, init)", "fetch"));
  const posted = page.waitForRequest((r) => r.method() === "POST" && /\/images\/\d+\/annotations\/$/.test(r.url()));
  await page.getByRole("button", { name: /^Accept/ }).click();
  const body = JSON.parse((await posted).postData() ?? "null");
  await clearFetch();
  const save = main.pauses.map(stackFiles).find((files) => files.includes("frontend/src/annotate/core/saver.ts")) ?? [];

  writeFileSync(cfg.outFile, JSON.stringify({ click, decode, save, body }, null, 2));
  console.log(JSON.stringify({ click, decode, save }, null, 2));
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
