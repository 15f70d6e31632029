// End-to-end browser test of SAM Studio, driven by playwright-core in Debian Chromium.
//
// Started by tests/e2e/test_browser.py against a real server it runs; reads its scenario
// from the JSON file named by SAM_E2E_CONFIG:
//   { baseUrl, users: [{username, password}, {username, password}], projectName,
//     imageName, click: [x, y], gtRle: {size, counts}, latencyClicks: [[x, y], ...],
//     outFile, screenshotDir, exportFile }
// Exits 0 when every check passed; writes measurements (IoU, latency p50/p95) to outFile.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { clickImage, launchChromium, login as loginAs, waitForMask } from "./lib.mjs";

const configPath = process.env.SAM_E2E_CONFIG;
if (!configPath) {
  console.error("SAM_E2E_CONFIG is not set");
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(configPath, "utf8"));
const results = { checks: [], consoleErrors: [] };
const started = Date.now();

function log(message) {
  console.log(`[e2e +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

// A failed check stops the run, unless it is `soft`: then the run goes on (later steps do
// not depend on it) and the exit code is still 1.
function check(name, ok, detail = "", { soft = false } = {}) {
  results.checks.push({ name, ok, detail });
  log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok && !soft) throw new Error(`check failed: ${name} ${detail}`);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

// Responses the app expects and handles (embedding not ready yet, decoder still exporting).
// 412: the stale save below, answered with the conflict dialog.
const EXPECTED = [/status of 409/, /status of 412/, /status of 503/];
// While the offline step below cuts the network, failed requests and websocket reconnects are
// expected too.
const EXPECTED_OFFLINE = [/ERR_INTERNET_DISCONNECTED/, /WebSocket/];
let offline = false;
// The upload step sends a file that is not an image on purpose: the server answers 400.
let uploading = false;

function watchConsole(page, who) {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    if (EXPECTED.some((re) => re.test(text))) return;
    if (offline && EXPECTED_OFFLINE.some((re) => re.test(text))) return;
    if (uploading && /status of 400/.test(text)) return;
    results.consoleErrors.push(`${who}: ${text}`);
    log(`console error (${who}): ${text}`);
  });
  page.on("pageerror", (error) => {
    results.consoleErrors.push(`${who}: ${error.message}`);
    log(`page error (${who}): ${error.message}`);
  });
}

function login(context, user, who) {
  return loginAs(context, cfg.baseUrl, user, (page) => watchConsole(page, who));
}

async function openImage(page) {
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByTestId("project-link").filter({ hasText: cfg.projectName }).first().click();
  await page.locator(`[data-testid=image-tile][data-name="${cfg.imageName}"]`).click();
  await page.waitForFunction(
    () => {
      const s = window.samStudio?.state();
      return s && s.embedding === "ready" && s.model;
    },
    null,
    { timeout: 240_000 },
  );
}

const browser = await launchChromium();

let exitCode = 0;
try {
  const viewport = { width: 1280, height: 800 };
  const contextA = await browser.newContext({ viewport, acceptDownloads: true });
  const contextB = await browser.newContext({ viewport });
  const [userA, userB] = cfg.users;

  // 1. Log in; the page must be cross-origin isolated (threaded WASM needs it).
  const a = await login(contextA, userA, "A");
  check("logged in", (await a.getByTestId("user").textContent())?.trim() === userA.username);
  check("crossOriginIsolated", await a.evaluate(() => globalThis.crossOriginIsolated === true));

  // 2. Open the demo image; the decoder loads and the embedding arrives.
  await openImage(a);
  const state = await a.evaluate(() => window.samStudio.state());
  results.decoder = { variant: state.model, backend: state.backend, threads: state.threads };
  log(`decoder ${state.model} on ${state.backend} x${state.threads}`);
  check("worker is cross-origin isolated and multi-threaded", state.backend === "webgpu" || state.threads > 1, `threads=${state.threads}`);

  // 3. Second user opens the same image (live updates and presence).
  const b = await login(contextB, userB, "B");
  await openImage(b);
  await a.getByTestId("presence").filter({ hasText: userB.username }).waitFor({ timeout: 15_000 });
  check("presence shows the teammate", true);
  const countB = await b.evaluate(() => window.samStudio.annotations().length);

  // 4a. Parity: for a few clicks the displayed mask is SAM's own (torch SamPredictor on the
  // same checkpoint and image, computed by the test): checks the coordinate transform, the
  // decoder export and the upscaling, whatever the model's quality.
  for (const ref of cfg.parity ?? []) {
    await a.keyboard.press("Escape");
    const n = await a.evaluate(() => window.samStudio.latencies.length);
    await clickImage(a, ref.click[0], ref.click[1]);
    await waitForMask(a, n);
    const parityIou = await a.evaluate((rle) => window.samStudio.iouWithRle(rle), ref.rle);
    (results.parity ??= []).push(parityIou);
    check(`mask at ${ref.click} equals SAM's predictor (IoU ${parityIou.toFixed(4)})`, parityIou >= cfg.minParityIou);
  }
  await a.keyboard.press("Escape");

  // 4. Click inside the known shape; the IoU of the displayed mask with the ground truth is
  // recorded for the Python side, which judges it (it depends on the model's quality, while the
  // parity clicks above judge the browser pipeline itself).
  const before4 = await a.evaluate(() => window.samStudio.latencies.length);
  await clickImage(a, cfg.click[0], cfg.click[1]);
  await waitForMask(a, before4);
  results.iou = await a.evaluate((rle) => window.samStudio.iouWithRle(rle), cfg.gtRle);
  results.candidates = (await a.evaluate(() => window.samStudio.state())).candidates;
  log(`mask vs ground truth IoU ${results.iou.toFixed(3)}`);
  if (cfg.screenshotDir) {
    mkdirSync(cfg.screenshotDir, { recursive: true });
    await a.screenshot({ path: join(cfg.screenshotDir, "workspace-mask.png") });
  }
  // Multi-mask choice: keys 1-3 switch candidates; the screenshot shows the candidate buttons.
  const preselected = await a.evaluate(() => window.samStudio.state().selected);
  const other = preselected === 1 ? 2 : 1;
  await a.keyboard.press(String(other + 1));
  await a.waitForFunction((i) => window.samStudio.state().selected === i, other);
  if (cfg.screenshotDir) await a.screenshot({ path: join(cfg.screenshotDir, "multi-mask.png") });
  // Undo the switch: back to the preselected (best) mask.
  await a.keyboard.press("Control+z");
  const afterUndo = await a.evaluate(() => window.samStudio.state().selected);
  check("undo restores the preselected candidate", afterUndo === preselected, `selected=${afterUndo}`);

  // 4c. A second click refines the mask: the previous logits go in as mask input, which the
  // fast decoder's click graph does not take, so its mask-input decoder answers.
  const beforeRefine = await a.evaluate(() => window.samStudio.latencies.length);
  await clickImage(a, cfg.click[0] + 3, cfg.click[1] + 3);
  await waitForMask(a, beforeRefine);
  const refinedPoints = await a.evaluate(() => window.samStudio.state().points);
  const refinedIou = await a.evaluate((rle) => window.samStudio.iouWithRle(rle), cfg.gtRle);
  check(
    "a second click refines the mask (mask input)",
    refinedPoints === 2 && refinedIou > 0.5,
    `points=${refinedPoints}, IoU with the shape ${refinedIou.toFixed(3)}`,
  );
  await a.keyboard.press("Control+z");
  await a.waitForFunction(() => window.samStudio.state().points === 1);

  // 5. Save it with a label; the teammate sees it live.
  await a.getByTestId("accept").click();
  await a.waitForFunction(() => window.samStudio.annotations().length > 0, null, { timeout: 15_000 });
  const saved = await a.evaluate(() => window.samStudio.annotations().at(-1));
  results.savedAnnotation = saved.id;
  check("annotation saved", typeof saved.id === "number");
  await b.waitForFunction((n) => window.samStudio.annotations().length > n, countB, { timeout: 15_000 });
  check("teammate sees the annotation live", true);

  // 6. Reload: still there.
  await a.reload();
  await a.waitForFunction((id) => window.samStudio?.annotations().some((x) => x.id === id), saved.id, { timeout: 30_000 });
  check("annotation persisted across reload", true);
  await a.waitForFunction(() => window.samStudio.state().embedding === "ready" && window.samStudio.state().model, null, { timeout: 120_000 });

  // 7. Stale save: A starts editing the annotation with the brush; meanwhile B changes it
  // (A sees that live); A's save must not overwrite it: the conflict dialog offers a merge.
  await a.locator(`[data-testid=annotation-item][data-id="${saved.id}"] button[title^="Edit"]`).click();
  await a.keyboard.press("b");
  {
    const [x0, y0] = await a.evaluate(([x, y]) => window.samStudio.imageToClient(x, y), [cfg.click[0] - 20, cfg.click[1] - 20]);
    await a.mouse.move(x0, y0);
    await a.mouse.down();
    await a.mouse.move(x0 + 40, y0 + 10, { steps: 5 });
    await a.mouse.up();
  }
  await b.waitForFunction((id) => window.samStudio.annotations().some((x) => x.id === id), saved.id);
  const patched = await b.evaluate(async (id) => {
    const ann = window.samStudio.annotations().find((x) => x.id === id);
    const csrf = decodeURIComponent(/(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "");
    const r = await fetch(`/api/projects/${location.pathname.split("/")[2]}/annotations/${id}/`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "If-Match": `"${ann.version}"` },
      body: JSON.stringify({ predicted_iou: 0.5 }),
    });
    return r.status;
  }, saved.id);
  check("teammate's PATCH accepted", patched === 200, `status ${patched}`);
  await a.waitForFunction(
    ([id, v]) => window.samStudio.annotations().some((x) => x.id === id && x.version > v),
    [saved.id, saved.version],
    { timeout: 15_000 },
  );
  check("teammate's update appears live", true);
  await a.keyboard.press("Enter");
  await a.getByTestId("conflict-dialog").waitFor({ timeout: 15_000 });
  check("stale save opens the conflict dialog", true);
  if (cfg.screenshotDir) await a.screenshot({ path: join(cfg.screenshotDir, "conflict.png") });
  await a.getByTestId("conflict-merge").click();
  await a.waitForFunction(
    ([id, v]) => window.samStudio.annotations().some((x) => x.id === id && x.version >= v + 2),
    [saved.id, saved.version],
    { timeout: 15_000 },
  );
  check("merge saved on top of the teammate's version", true);
  // The broadcast of our own merge can arrive before our PATCH resolves; the workspace
  // resets its prompts when it resolves (then says so), so wait for that before new clicks.
  await a.waitForFunction(
    () => document.querySelector("[data-testid=notice]")?.textContent?.includes("Merged both versions"),
    null,
    { timeout: 15_000 },
  );
  await a.getByTestId("conflict-dialog").waitFor({ state: "hidden", timeout: 15_000 });
  await a.keyboard.press("s");

  // 8. Latency: click-to-mask over many clicks, measured in the page (event → mask drawn).
  const before = await a.evaluate(() => window.samStudio.latencies.length);
  for (const [x, y] of cfg.latencyClicks) {
    await a.keyboard.press("Escape");
    const n = await a.evaluate(() => window.samStudio.latencies.length);
    await clickImage(a, x, y);
    await waitForMask(a, n);
  }
  const latencies = (await a.evaluate(() => window.samStudio.latencies)).slice(before);
  const decodeTimes = await a.evaluate(() => window.samStudio.decodeTimes);
  const runTimes = await a.evaluate(() => window.samStudio.runTimes);
  results.workerDecode = {
    p50: percentile(decodeTimes, 50),
    p95: percentile(decodeTimes, 95),
    runP50: percentile(runTimes, 50),
    runP95: percentile(runTimes, 95),
  };
  log(
    `worker time per decode: p50 ${results.workerDecode.p50.toFixed(1)} ms, p95 ${results.workerDecode.p95.toFixed(1)} ms ` +
      `(session.run p50 ${results.workerDecode.runP50.toFixed(1)} ms, p95 ${results.workerDecode.runP95.toFixed(1)} ms)`,
  );
  results.latency = {
    clicks: latencies.length,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    mean: latencies.reduce((s, v) => s + v, 0) / Math.max(1, latencies.length),
  };
  log(`click-to-mask latency over ${latencies.length} clicks: p50 ${results.latency.p50.toFixed(1)} ms, p95 ${results.latency.p95.toFixed(1)} ms`);
  check("latency measured over >= 50 clicks", latencies.length >= 50);
  await a.keyboard.press("Escape");

  // 8b. Offline save: the mask is kept and saved by itself when the network is back.
  const [ox, oy] = cfg.latencyClicks[0];
  const beforeOffline = await a.evaluate(() => window.samStudio.latencies.length);
  await clickImage(a, ox, oy);
  await waitForMask(a, beforeOffline);
  const savedBefore = await a.evaluate(() => window.samStudio.annotations().length);
  offline = true;
  await contextA.setOffline(true);
  await a.keyboard.press("Enter");
  await a.waitForFunction(
    () => document.querySelector("[data-testid=notice]")?.textContent?.includes("Offline"),
    null,
    { timeout: 15_000 },
  );
  await contextA.setOffline(false);
  await a.waitForFunction((n) => window.samStudio.annotations().length > n, savedBefore, { timeout: 30_000 });
  await a.getByTestId("reconnecting").waitFor({ state: "hidden", timeout: 30_000 });
  offline = false;
  check("a save made offline goes through when the network is back", true);
  await a.keyboard.press("Escape");

  // 8c. A deletes an annotation (its button found by its accessible name) while B has the
  // image open: it disappears there live.
  const doomed = await a.evaluate(() => window.samStudio.annotations().at(-1).id);
  await b.waitForFunction((id) => window.samStudio.annotations().some((x) => x.id === id), doomed, { timeout: 15_000 });
  await a.getByRole("button", { name: `Delete annotation ${doomed}` }).click();
  const deletedAt = Date.now();
  await b.waitForFunction((id) => !window.samStudio.annotations().some((x) => x.id === id), doomed, { timeout: 15_000 });
  results.deletionSeenMs = Date.now() - deletedAt;
  check("a teammate's deletion disappears live", true, `${results.deletionSeenMs} ms after the click`);

  // 9. Export (COCO) and download the archive; the Python side looks inside.
  await a.goto(`${cfg.baseUrl}/`);
  await a.getByTestId("project-link").filter({ hasText: cfg.projectName }).first().click();
  await a.getByRole("button", { name: "Export…" }).click();
  const exportDialog = a.getByRole("dialog", { name: "Export" });
  await exportDialog.getByRole("button", { name: "Start export" }).click();
  const link = exportDialog.getByRole("link", { name: /^Download export \d+/ }).first();
  await link.waitFor({ timeout: 120_000 });
  const [download] = await Promise.all([a.waitForEvent("download"), link.click()]);
  if (cfg.exportFile) {
    mkdirSync(dirname(cfg.exportFile), { recursive: true });
    await download.saveAs(cfg.exportFile);
  }
  check("export downloaded", true);
  await exportDialog.getByRole("button", { name: /^Close/ }).click();

  // 10. Review view (proposals), screenshot.
  await a.goto(`${cfg.baseUrl}/projects/${cfg.projectId}/review`);
  await a.getByTestId("proposal").first().waitFor({ timeout: 60_000 }).catch(() => undefined);
  const proposals = await a.getByTestId("proposal").count();
  results.proposals = proposals;
  if (cfg.screenshotDir) {
    await a.waitForTimeout(500);
    await a.screenshot({ path: join(cfg.screenshotDir, "review.png") });
  }
  if (proposals > 0) {
    const first = await a.getByTestId("proposal").first().getAttribute("data-id");
    await a.getByRole("button", { name: `Accept annotation ${first}` }).click();
    await a.waitForFunction((n) => document.querySelectorAll("[data-testid=proposal]").length < n, proposals);
    check("proposal accepted one by one", true);
    const left = await a.getByTestId("proposal").count();
    if (left > 0) {
      await a.getByTestId("select-all").check();
      await a.getByRole("button", { name: /^Reject selected/ }).click();
      const reject = a.getByRole("dialog", { name: /^Reject \d+ annotation/ });
      await reject.getByRole("textbox", { name: /^Reason/ }).fill("not an object");
      await reject.getByRole("button", { name: "Reject", exact: true }).click();
      await a.getByTestId("review-empty").waitFor({ timeout: 15_000 });
      check("proposals rejected in bulk", true);
    }
  }

  // 11. Models page: the model in use, and the fine-tuning controls for a manager.
  await a.goto(`${cfg.baseUrl}/projects/${cfg.projectId}/models`);
  await a.getByTestId("active-model").filter({ hasText: "sam_tiny" }).waitFor({ timeout: 15_000 });
  check("models page shows the model in use", true);
  check("manager sees the fine-tuning button", (await a.getByTestId("start-training").count()) === 1);
  const trained = a.getByRole("combobox", { name: "train" });
  // The encoder choices appear once the registry has said the model is a SAM model.
  await trained.getByRole("option").nth(2).waitFor({ state: "attached", timeout: 15_000 }).catch(() => {});
  check("the manager chooses what fine-tuning trains", (await trained.getByRole("option").count()) === 3 && (await trained.inputValue()) === "frozen");
  await trained.selectOption("lora");
  await a.getByText("re-embeds every image").waitFor({ timeout: 5_000 });
  await trained.selectOption("frozen");
  await a.getByText("re-embeds every image").waitFor({ state: "detached", timeout: 5_000 });
  check("an encoder mode says it embeds every image again", true);
  if (cfg.screenshotDir) await a.screenshot({ path: join(cfg.screenshotDir, "models.png") });

  // 12. Upload by drag and drop onto the grid: an image twice (one is a duplicate), a bigger
  // one that goes in chunks (the server runs with 64 KiB chunks), and a file that is not an
  // image; each gets its own bar and its outcome in place.
  await a.goto(`${cfg.baseUrl}/projects/${cfg.projectId}`);
  await a.getByRole("button", { name: "Upload files…" }).waitFor({ timeout: 15_000 });
  let chunkRequests = 0;
  a.on("request", (r) => {
    if (r.method() === "PATCH" && r.url().includes("/uploads/")) chunkRequests++;
  });
  uploading = true;
  const dropped = await a.evaluateHandle(async () => {
    const png = async (w, h, seed) => {
      const canvas = new OffscreenCanvas(w, h);
      const ctx = canvas.getContext("2d");
      const pixels = ctx.createImageData(w, h);
      let s = seed;
      for (let i = 0; i < pixels.data.length; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        pixels.data[i] = i % 4 === 3 ? 255 : s >>> 24;
      }
      ctx.putImageData(pixels, 0, 0);
      return (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer();
    };
    const transfer = new DataTransfer();
    const small = await png(48, 32, 1);
    transfer.items.add(new File([small], "e2e-small.png", { type: "image/png" }));
    transfer.items.add(new File([small], "e2e-small-copy.png", { type: "image/png" }));
    transfer.items.add(new File([await png(256, 256, 2)], "e2e-big.png", { type: "image/png" }));
    transfer.items.add(new File(["not an image"], "e2e-fake.png", { type: "image/png" }));
    return transfer;
  });
  await a.dispatchEvent("main.page", "drop", { dataTransfer: dropped });
  await a.getByRole("progressbar", { name: "Overall upload progress" }).waitFor({ timeout: 15_000 });
  check("per-file progress bars", (await a.getByRole("progressbar", { name: /^Upload progress of / }).count()) === 4);
  if (cfg.screenshotDir) await a.screenshot({ path: join(cfg.screenshotDir, "upload.png") });
  const summary = a.getByTestId("upload-summary");
  await summary.filter({ hasText: "4/4 files" }).waitFor({ timeout: 120_000 });
  uploading = false;
  const summaryText = (await summary.textContent()) ?? "";
  results.upload = { summary: summaryText, chunkRequests };
  check("upload summary", /2 images added/.test(summaryText) && /1 duplicates/.test(summaryText) && /1 failed/.test(summaryText), summaryText);
  check("the server's error shown in place", (await a.getByTestId("upload-row").filter({ hasText: "not a readable image" }).count()) === 1);
  check("the duplicate shown in place", (await a.getByTestId("upload-row").filter({ hasText: "already in this project" }).count()) === 1);
  check("the big file went in chunks", chunkRequests >= 2, `${chunkRequests} chunks`);

  check("no console errors", results.consoleErrors.length === 0, results.consoleErrors.join(" | "));
  const failed = results.checks.filter((c) => !c.ok).map((c) => c.name);
  if (failed.length > 0) throw new Error(`failed checks: ${failed.join("; ")}`);
  await contextA.close();
  await contextB.close();
} catch (error) {
  exitCode = 1;
  results.error = error instanceof Error ? error.stack ?? error.message : String(error);
  console.error(results.error);
} finally {
  await browser.close();
  results.seconds = (Date.now() - started) / 1000;
  if (cfg.outFile) writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
