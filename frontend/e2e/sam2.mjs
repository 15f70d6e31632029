// Browser scenario of a SAM 2.1 project, driven by playwright-core in Debian Chromium.
//
// Started by tests/e2e/test_sam2_browser.py against a server whose demo project uses
// sam2.1_hiera_tiny (random weights from a checkpoint file, decoder exported before the server
// started). Reads its scenario from SAM_E2E_CONFIG:
//   { baseUrl, projectId, projectName, imageId, modelKey, user: {username, password},
//     clicks: [{click: [x, y], rle}], outFile, exportFile }
// For each click: the mask shown, its IoU with SAM2ImagePredictor's (`rle`, computed by the
// test), then accept; finally a COCO export is downloaded. Records what it sees in outFile; the
// Python side judges it (the stored annotations included). Exits 1 when a step could not run.
import { readFileSync, writeFileSync } from "node:fs";
import { clickImage, launchChromium, login, waitForMask } from "./lib.mjs";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG, "utf8"));
const results = { consoleErrors: [], embeddingRequests: [], clicks: [] };
const started = Date.now();

function log(message) {
  console.log(`[sam2 +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

// The embedding may still be computing when the page asks (503), as with every model.
const EXPECTED = [/status of 503/];

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() !== "error" || EXPECTED.some((re) => re.test(msg.text()))) return;
    results.consoleErrors.push(msg.text());
    log(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (error) => results.consoleErrors.push(error.message));
  page.on("response", (response) => {
    if (!new URL(response.url()).pathname.startsWith("/api/embeddings/")) return;
    const headers = response.headers();
    results.embeddingRequests.push({
      path: new URL(response.url()).pathname,
      status: response.status(),
      layout: headers["x-embedding-layout"] ?? null,
    });
  });
}

const browser = await launchChromium();
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await login(context, cfg.baseUrl, cfg.user, watch);
  await page.goto(`${cfg.baseUrl}/projects/${cfg.projectId}/images/${cfg.imageId}`);
  await page.waitForFunction(
    (key) => {
      const s = window.samStudio?.state();
      return s && s.embedding === "ready" && s.modelKey === key && s.model && !s.switching;
    },
    cfg.modelKey,
    { timeout: 300_000 },
  );
  const state = await page.evaluate(() => window.samStudio.state());
  results.decoder = { modelKey: state.modelKey, variant: state.model, embeddingKey: state.embeddingKey };
  log(`ready: ${JSON.stringify(results.decoder)}`);

  // One click per reference mask: the mask shown against the predictor's, then accept it.
  for (const ref of cfg.clicks) {
    await page.keyboard.press("Escape");
    const n = await page.evaluate(() => window.samStudio.latencies.length);
    const saved = await page.evaluate(() => window.samStudio.annotations().length);
    await clickImage(page, ref.click[0], ref.click[1]);
    await waitForMask(page, n);
    const shownIou = await page.evaluate((rle) => window.samStudio.iouWithRle(rle), ref.rle);
    const candidates = (await page.evaluate(() => window.samStudio.state())).candidates.length;
    await page.getByTestId("accept").click();
    await page.waitForFunction((count) => window.samStudio.annotations().length > count, saved, { timeout: 30_000 });
    const annotation = await page.evaluate(() => window.samStudio.annotations().at(-1));
    results.clicks.push({ click: ref.click, shownIou, candidates, annotationId: annotation.id });
    log(`click ${ref.click}: IoU with the predictor ${shownIou.toFixed(4)}, saved as ${annotation.id}`);
  }

  // Export (COCO) from the project page and download the archive; the Python side looks inside.
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByTestId("project-link").filter({ hasText: cfg.projectName }).first().click();
  await page.getByRole("button", { name: "Export…" }).click();
  const dialog = page.getByRole("dialog", { name: "Export" });
  await dialog.getByRole("button", { name: "Start export" }).click();
  const link = dialog.getByRole("link", { name: /^Download export \d+/ }).first();
  await link.waitFor({ timeout: 120_000 });
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  await download.saveAs(cfg.exportFile);
  results.exported = true;
  log("export downloaded");
  await context.close();
} catch (error) {
  exitCode = 1;
  results.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(results.error);
} finally {
  await browser.close();
  results.seconds = (Date.now() - started) / 1000;
  writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
