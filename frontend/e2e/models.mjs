// Browser scenario of the project's model, driven by playwright-core in Debian Chromium.
//
// Started by tests/e2e/test_models_browser.py against a server it prepared as scripts/run.sh
// does (offline: sam_tiny; every present model's decoder exported before it starts), with a
// second model present (MobileSAM) and a download of a third (SAM ViT-B) under way from a
// local stand-in for the download host. Reads its scenario from SAM_E2E_CONFIG:
//   { baseUrl, projectId, imageId, click: [x, y], owner: {username, password},
//     annotator: {username, password}, presentModel, downloadingModel, absentModel, cutUrl,
//     outFile }
// Records what it sees in outFile; the Python side judges it. Exits 1 when a step could not
// run at all.
import { readFileSync, writeFileSync } from "node:fs";
import { clickImage, launchChromium, login, waitForMask } from "./lib.mjs";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG, "utf8"));
const results = { consoleErrors: [], responses503: [], decoderRequests: [] };
const started = Date.now();

function log(message) {
  console.log(`[models +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

/** Console errors of the annotator's page (every one counts), and the owner's (a 409 is the
 * refusal this scenario asks for). */
function watch(who, expected = []) {
  return (page) => {
    page.on("console", (msg) => {
      if (msg.type() !== "error" || expected.some((re) => re.test(msg.text()))) return;
      results.consoleErrors.push(`${who}: ${msg.text()}`);
      log(`console error (${who}): ${msg.text()}`);
    });
    page.on("pageerror", (error) => results.consoleErrors.push(`${who}: ${error.message}`));
    page.on("response", (response) => {
      if (response.status() === 503) results.responses503.push(response.url());
      const decoder = /\/api\/models\/([^/]+)\/decoder\/$/.exec(new URL(response.url()).pathname);
      if (decoder) results.decoderRequests.push({ who, model: decoder[1], status: response.status() });
    });
  };
}

function workspaceState(page) {
  return page.evaluate(() => window.samStudio.state());
}

async function waitReady(page, modelKey, timeout = 240_000) {
  await page.waitForFunction(
    (key) => {
      const s = window.samStudio?.state();
      return s && s.embedding === "ready" && s.modelKey === key && !s.switching;
    },
    modelKey,
    { timeout },
  );
}

/** One click on the image; what the workspace shows after it. */
async function clickForMask(page) {
  await page.keyboard.press("Escape");
  const n = await page.evaluate(() => window.samStudio.latencies.length);
  await clickImage(page, cfg.click[0], cfg.click[1]);
  await waitForMask(page, n);
  const state = await workspaceState(page);
  await page.keyboard.press("Escape");
  return { modelKey: state.modelKey, embeddingKey: state.embeddingKey, candidates: state.candidates.length };
}

/** PATCH the project's model as the owner; the answer's status and body. */
function switchModel(page, modelKey) {
  return page.evaluate(
    async ([projectId, key]) => {
      const csrf = decodeURIComponent(/(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "");
      const r = await fetch(`/api/projects/${projectId}/`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ default_model_key: key }),
      });
      return { status: r.status, body: await r.json() };
    },
    [cfg.projectId, modelKey],
  );
}

function text(page, testId) {
  return page.getByTestId(testId).textContent({ timeout: 1000 }).catch(() => null);
}

const browser = await launchChromium();
let exitCode = 0;
try {
  const viewport = { width: 1280, height: 800 };
  const annotatorContext = await browser.newContext({ viewport });
  const ownerContext = await browser.newContext({ viewport });

  // (a) The first workspace opened after the server is ready: a fresh page load, then one
  // click; the time is the page's own clock (0 = navigation start) when the mask is painted.
  const page = await login(annotatorContext, cfg.baseUrl, cfg.annotator, watch("annotator"));
  await page.goto(`${cfg.baseUrl}/projects/${cfg.projectId}/images/${cfg.imageId}`);
  await waitReady(page, "sam_tiny");
  const readyMs = await page.evaluate(() => performance.now());
  const first = await (async () => {
    const n = await page.evaluate(() => window.samStudio.latencies.length);
    await clickImage(page, cfg.click[0], cfg.click[1]);
    await waitForMask(page, n);
    return page.evaluate(() => performance.now());
  })();
  results.first = {
    readyMs,
    firstMaskMs: first,
    candidates: (await workspaceState(page)).candidates.length,
    notice: await text(page, "model-notice"),
    modelsLink: await page.getByRole("link", { name: "Open the Models page" }).getAttribute("href").catch(() => null),
  };
  // Where the time went: the requests on the way (page clock, ms) and the decoder's start.
  results.first.timeline = await page.evaluate(() => [
    { name: "DOMContentLoaded", start: 0, end: Math.round(performance.getEntriesByType("navigation")[0]?.domContentLoadedEventEnd ?? 0) },
    ...performance
      .getEntriesByType("resource")
      .filter((e) => /\/api\/|\.onnx$|\.wasm$|\.js$/.test(new URL(e.name).pathname))
      .map((e) => ({ name: new URL(e.name).pathname, start: Math.round(e.startTime), end: Math.round(e.responseEnd) })),
  ]);
  const decoder = await workspaceState(page);
  results.first.decoderInitMs = decoder.modelLoadMs;
  results.first.decoderSessionsMs = decoder.modelSessionsMs;
  results.first.decoderFirstSessionMs = decoder.modelFirstSessionMs;
  log(
    `first mask after page load: ${first.toFixed(0)} ms (ready at ${readyMs.toFixed(0)} ms; decoder start ` +
      `${decoder.modelLoadMs?.toFixed(0)} ms: sessions ${decoder.modelSessionsMs?.toFixed(0)} ms, the first with the ` +
      `runtime ${decoder.modelFirstSessionMs?.toFixed(0)} ms, warm-up the rest)`,
  );
  for (const t of results.first.timeline) log(`  ${String(t.start).padStart(6)} → ${String(t.end).padStart(6)} ms  ${t.name}`);
  await page.keyboard.press("Escape");
  await page.evaluate(() => {
    window.__samSamePage = true; // gone if the workspace reloaded
  });

  // (b) The owner switches the project to the other present model while the annotator's
  // workspace is open: it loads that model's decoder and this image's embedding live.
  const owner = await login(ownerContext, cfg.baseUrl, cfg.owner, watch("owner", [/status of 409/]));
  const manifest = page.waitForResponse((r) => r.url().endsWith(`/api/models/${cfg.presentModel}/decoder/`) && r.status() === 200, { timeout: 240_000 });
  const switched = await switchModel(owner, cfg.presentModel);
  log(`switch to ${cfg.presentModel}: HTTP ${switched.status}`);
  await manifest;
  await waitReady(page, cfg.presentModel);
  results.live = {
    status: switched.status,
    modelKey: switched.body.default_model_key,
    click: await clickForMask(page),
    samePage: await page.evaluate(() => window.__samSamePage === true),
    inUse: await text(page, "model-in-use"),
    notice: await text(page, "model-notice"),
  };
  log(`live switch: ${JSON.stringify(results.live)}`);

  // (c) Switching to a model that is still being downloaded waits for it (the workspace says
  // so and keeps working); to an absent one it is refused; the download breaking ends the
  // wait, and the project keeps its model.
  await owner.waitForFunction(
    async (key) => (await (await fetch(`/api/models/${key}/`)).json()).state === "downloading",
    cfg.downloadingModel,
    { timeout: 60_000, polling: 500 },
  );
  const queued = await switchModel(owner, cfg.downloadingModel);
  await page.getByTestId("model-pending").filter({ hasText: cfg.downloadingModel }).waitFor({ timeout: 30_000 });
  await page.getByTestId("model-pending").filter({ hasText: "%" }).waitFor({ timeout: 30_000 });
  const whilePending = await clickForMask(page);
  const pendingText = await text(page, "model-pending");
  const refused = await switchModel(owner, cfg.absentModel);
  const afterRefusal = await clickForMask(page);
  await fetch(cfg.cutUrl);
  await page.getByTestId("model-pending-ended").waitFor({ timeout: 60_000 });
  results.pending = {
    queued: { status: queued.status, modelKey: queued.body.default_model_key, pending: queued.body.pending_model_key },
    pendingText,
    whilePending,
    refused: { status: refused.status, detail: refused.body.detail },
    afterRefusal,
    ended: await text(page, "model-pending-ended"),
    afterFailure: await clickForMask(page),
    inUse: await text(page, "model-in-use"),
    samePage: await page.evaluate(() => window.__samSamePage === true),
  };
  log(`pending: ${JSON.stringify(results.pending)}`);
  await annotatorContext.close();
  await ownerContext.close();
} catch (error) {
  exitCode = 1;
  results.error = error instanceof Error ? error.stack ?? error.message : String(error);
  console.error(results.error);
} finally {
  await browser.close();
  results.seconds = (Date.now() - started) / 1000;
  writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
