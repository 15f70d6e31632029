// End-to-end browser test of the work pages (queue, review, segment everything, export,
// upload in progress), driven by playwright-core in Debian Chromium. Started by
// tests/e2e/test_work_pages.py against a real server; reads its scenario from the JSON file
// named by SAM_E2E_CONFIG:
//   { baseUrl, projectId, owner, annotator, annotation, other, reason, outFile, exportFile,
//     badImport, burstImage, burst, screenshotDir }
// Elements are found by role and accessible name. Exits 0 when every check passed.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG ?? "", "utf8"));
const results = { checks: [], pageErrors: [] };
const started = Date.now();
const project = `${cfg.baseUrl}/projects/${cfg.projectId}`;

function log(message) {
  console.log(`[work +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

function check(name, ok, detail = "") {
  results.checks.push({ name, ok, detail });
  log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) throw new Error(`check failed: ${name} ${detail}`);
}

// Answers the app expects and handles: an embedding not ready yet (409), a decoder still
// being prepared (503); the refused import (400) is shown in its dialog.
const EXPECTED = [/status of 409/, /status of 503/];
let importing = false;

async function login(browser, user) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (msg) => {
    const expected = EXPECTED.some((re) => re.test(msg.text())) || (importing && /status of 400/.test(msg.text()));
    if (msg.type() === "error" && !expected) results.pageErrors.push(`${user.username}: ${msg.text()}`);
  });
  page.on("pageerror", (error) => results.pageErrors.push(`${user.username}: ${error.message}`));
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("textbox", { name: /username/i }).fill(user.username);
  await page.getByLabel(/password/i).fill(user.password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/accounts/login")), page.getByRole("button", { name: /log in|sign in/i }).click()]);
  return page;
}

async function shot(page, name) {
  if (!cfg.screenshotDir) return;
  mkdirSync(cfg.screenshotDir, { recursive: true });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(cfg.screenshotDir, name) });
}

const imageOf = (url) => Number(/\/images\/(\d+)/.exec(url)?.[1] ?? NaN);

async function reviewCount(page, image) {
  await page.goto(`${project}/review`);
  await page.getByRole("combobox", { name: "Image" }).selectOption({ label: image });
  const status = page.getByRole("status").filter({ hasText: / shown$/ });
  await status.waitFor();
  return Number(/(\d+) shown/.exec((await status.textContent()) ?? "")?.[1]);
}

async function segment(page, threshold, stability) {
  await page.goto(project);
  await page.getByRole("checkbox", { name: "Select demo-04.png" }).check();
  await page.getByRole("button", { name: "Segment everything…" }).click();
  const dialog = page.getByRole("dialog", { name: "Segment everything" });
  await dialog.getByRole("spinbutton", { name: /^Points per side/ }).fill("8");
  await dialog.getByRole("spinbutton", { name: /^Predicted-IoU threshold/ }).fill(String(threshold));
  await dialog.getByRole("spinbutton", { name: /^Stability threshold/ }).fill(String(stability));
  await dialog.getByRole("button", { name: "Start" }).click();
  const outcome = dialog.getByRole("status").filter({ hasText: /masks kept|ready to review|failed/ });
  await outcome.waitFor({ timeout: 300_000 });
  return { dialog, text: ((await outcome.textContent()) ?? "").trim() };
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", args: ["--no-sandbox"] });
let exitCode = 0;
try {
  const owner = await login(browser, cfg.owner);
  const annotator = await login(browser, cfg.annotator);

  // 1. The manager picks three images (a click, then a shift-click for the range) and
  // assigns them to the annotator.
  await owner.goto(project);
  await owner.getByRole("checkbox", { name: "Select demo-01.png" }).click();
  await owner.getByRole("checkbox", { name: "Select demo-03.png" }).click({ modifiers: ["Shift"] });
  check("shift-click picks a range", (await owner.getByRole("status").filter({ hasText: "3 selected" }).count()) === 1);
  await owner.getByRole("combobox", { name: "Assign to" }).selectOption({ label: `${cfg.annotator.username} (annotator)` });
  await owner.getByRole("button", { name: "Assign 3" }).click();
  await owner.getByRole("status").filter({ hasText: `3 images assigned to ${cfg.annotator.username}` }).waitFor();
  check("bulk assignment", true);

  // 2. The annotator's queue: Start opens the first image, Done the next one.
  await annotator.goto(`${project}/queue`);
  const assigned = annotator.getByRole("list", { name: "Assigned images" });
  await assigned.getByRole("link", { name: "demo-03.png" }).waitFor();
  check("the queue lists the assigned images", (await assigned.getByRole("link").count()) === 3);
  await annotator.getByRole("button", { name: /^Start/ }).click();
  await annotator.waitForURL(/\/images\/\d+$/);
  const firstImage = imageOf(annotator.url());
  await annotator.getByRole("button", { name: /^Done, next image/ }).click();
  await annotator.waitForURL((url) => /\/images\/\d+$/.test(url.pathname) && imageOf(url.href) !== firstImage);
  check("Done opens the next image of the queue", true, `${firstImage} → ${imageOf(annotator.url())}`);

  // 3. The manager rejects the annotator's work with a reason on the review page.
  await owner.goto(`${project}/review`);
  await owner.getByRole("combobox", { name: "Annotator" }).selectOption({ label: cfg.annotator.username });
  await owner.getByRole("status").filter({ hasText: / shown$/ }).waitFor(); // the filtered list, not the first load's
  await owner.getByRole("button", { name: `Reject annotation ${cfg.annotation}` }).click();
  const reject = owner.getByRole("dialog", { name: "Reject 1 annotation" });
  check("a rejection needs a reason", await reject.getByRole("button", { name: "Reject", exact: true }).isDisabled());
  await reject.getByRole("textbox", { name: /^Reason/ }).fill(cfg.reason);
  await reject.getByRole("button", { name: "Reject", exact: true }).click();
  await owner.getByRole("button", { name: `Reject annotation ${cfg.annotation}` }).waitFor({ state: "detached" });
  await owner.getByRole("button", { name: `Accept annotation ${cfg.other}` }).click();
  await owner.getByRole("button", { name: `Accept annotation ${cfg.other}` }).waitFor({ state: "detached" });
  check("another annotation accepted", true);
  await owner.getByRole("combobox", { name: "State" }).selectOption({ label: "Rejected" });
  await owner.getByText(`Rejected: ${cfg.reason}`).waitFor();
  check("the rejection is listed with its reason", true);
  await shot(owner, "review.png");

  // 4. The annotator sees it in her queue (the image is back, first) and on the image.
  await annotator.goto(`${project}/queue`);
  await annotator.getByRole("list", { name: "Rejected work on demo-01.png" }).getByText(cfg.reason).waitFor();
  check("the queue shows the rejection reason", true);
  await shot(annotator, "queue.png");
  await annotator.getByRole("button", { name: /^Start/ }).click();
  await annotator.waitForURL(/\/images\/\d+$/);
  await annotator.getByRole("region", { name: "Annotations" }).getByText(`Rejected: ${cfg.reason}`).waitFor();
  check("the workspace shows the rejection reason", imageOf(annotator.url()) === firstImage);

  // 5. Segment everything: strict thresholds keep nothing and say so; open ones keep masks,
  // and the count is what the review page lists for that image.
  const before = await reviewCount(owner, "demo-04.png");
  const strict = await segment(owner, 1, 1);
  const afterStrict = await reviewCount(owner, "demo-04.png");
  const open = await segment(owner, 0, 0);
  await shot(owner, "segment-everything.png");
  const kept = Number(/^(\d+) proposals? ready/.exec(open.text)?.[1] ?? 0);
  const listed = (await reviewCount(owner, "demo-04.png")) - afterStrict;
  results.segment = { strict: strict.text, open: open.text, kept, listed, strictListed: afterStrict - before };
  check("segment everything tells what it kept", afterStrict === before && kept === listed, JSON.stringify(results.segment));

  // 6. Export COCO polygons from the dialog and download the archive.
  await owner.goto(project);
  await owner.getByRole("button", { name: "Export…" }).click();
  const exportDialog = owner.getByRole("dialog", { name: "Export" });
  await exportDialog.getByRole("combobox", { name: "Format" }).selectOption({ label: "COCO (polygons)" });
  await exportDialog.getByRole("spinbutton", { name: /^Polygon tolerance/ }).fill("0.5");
  await exportDialog.getByRole("button", { name: "Start export" }).click();
  const link = exportDialog.getByRole("link", { name: /^Download export \d+ \(COCO \(polygons\)\)/ }).first();
  await link.waitFor({ timeout: 120_000 });
  await shot(owner, "export-dialog.png");
  const [download] = await Promise.all([owner.waitForEvent("download"), link.click()]);
  mkdirSync(dirname(cfg.exportFile), { recursive: true });
  await download.saveAs(cfg.exportFile);
  check("export downloaded", true);
  const rows = exportDialog.getByRole("button", { name: /^Delete export/ });
  const count = await rows.count();
  await rows.first().click();
  await owner.waitForFunction((n) => document.querySelectorAll("[data-testid=export-row]").length === n - 1, count);
  check("an export is deleted from the history", true);
  await exportDialog.getByRole("button", { name: /^Close/ }).click();

  // 7. An import the server refuses lists its located errors.
  await owner.getByRole("button", { name: "Import…" }).click();
  const importDialog = owner.getByRole("dialog", { name: "Import annotations" });
  await importDialog.getByLabel("Zip archive").setInputFiles(cfg.badImport);
  importing = true;
  await importDialog.getByRole("button", { name: "Import" }).click();
  const problems = importDialog.getByRole("alert");
  await problems.getByText(/annotations\[0\]\.image_id: no image with id 99/).waitFor();
  check("the import's located errors are listed", (await problems.getByText(/annotations\[1\]\.category_id: no category with id 7/).count()) === 1);
  importing = false;
  await importDialog.getByRole("button", { name: /^Close/ }).click();

  // 8. An upload in progress: the first two files go through, the server's answers to the
  // others are held back a moment for the picture.
  let posted = 0;
  await owner.route("**/api/projects/*/images/", async (route) => {
    if (route.request().method() === "POST" && ++posted > 2) await new Promise((r) => setTimeout(r, 4000));
    await route.continue();
  });
  const files = await owner.evaluateHandle(async () => {
    const transfer = new DataTransfer();
    for (let i = 0; i < 4; i++) {
      const canvas = new OffscreenCanvas(96, 64);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = `hsl(${i * 80}, 70%, 50%)`;
      ctx.fillRect(0, 0, 96, 64);
      ctx.fillStyle = "#fff";
      ctx.fillRect(10 + i * 10, 10, 30, 30);
      transfer.items.add(new File([await canvas.convertToBlob({ type: "image/png" })], `work-${i}.png`, { type: "image/png" }));
    }
    return transfer;
  });
  await owner.dispatchEvent("main.page", "drop", { dataTransfer: files });
  await owner.getByText(/2\/4 files/).waitFor({ timeout: 60_000 });
  check("the upload shows its progress", await owner.getByRole("progressbar", { name: "Overall upload progress" }).isVisible());
  await shot(owner, "upload.png");
  await owner.getByText(/4\/4 files/).waitFor({ timeout: 60_000 });
  await owner.unroute("**/api/projects/*/images/");
  check("upload finished", true);

  // 9. A teammate deletes the label that every annotation on the open image carries, handing
  // them to another label: one update event per annotation. The workspace takes the burst and
  // repaints its annotation layer at most once a frame (counted against the frames that passed
  // while the events came in), not once per event. Then a bulk review of them all arrives as
  // one decision.
  await owner.goto(`${project}/images/${cfg.burstImage}`);
  await owner.waitForFunction((n) => (window.samStudio?.annotations().length ?? 0) >= n, cfg.burst.length);
  const nextFrames = () => owner.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  await nextFrames(); // the load's own paint is done before counting
  const paintsBefore = await owner.evaluate(() => {
    window.burst = { frames: 0, done: false, longTasks: [] };
    const tick = () => {
      window.burst.frames++;
      if (!window.burst.done) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    new PerformanceObserver((list) => window.burst.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
    return window.samStudio.layerPaints.length;
  });
  const teammate = (path, method, body) =>
    owner.evaluate(async ({ path, method, body }) => {
      const csrf = decodeURIComponent(/(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "");
      const sent = performance.now();
      const r = await fetch(path, {
        method,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, sent };
    }, { path, method, body });
  const relabelled = await teammate(
    `/api/projects/${cfg.projectId}/labels/${cfg.burstLabel}/?annotations=reassign&reassign_to=${cfg.burstTarget}`,
    "DELETE",
  );
  await owner.waitForFunction(
    ({ ids, label }) => ids.every((id) => window.samStudio.annotations().find((a) => a.id === id)?.label === label),
    { ids: cfg.burst, label: cfg.burstTarget },
  );
  const applied = await owner.evaluate(() => performance.now());
  await nextFrames();
  const burst = await owner.evaluate((from) => {
    window.burst.done = true;
    return { paints: window.samStudio.layerPaints.slice(from), frames: window.burst.frames, longTasks: window.burst.longTasks };
  }, paintsBefore);
  results.burst = {
    events: cfg.burst.length,
    frames: burst.frames,
    paints: burst.paints.length,
    paintMs: burst.paints.reduce((a, b) => a + b, 0),
    appliedMs: applied - relabelled.sent,
    longestTaskMs: Math.max(0, ...burst.longTasks),
  };
  check(
    "a burst of teammates' changes repaints the annotation layer at most once a frame",
    relabelled.status === 204 && burst.paints.length >= 1 && burst.paints.length <= burst.frames && burst.paints.length < cfg.burst.length,
    JSON.stringify(results.burst),
  );
  const reviewed = await teammate(`/api/projects/${cfg.projectId}/annotations/review/`, "POST", {
    ids: cfg.burst,
    review_state: "rejected",
    reason: "Too coarse.",
  });
  await owner.waitForFunction(
    (ids) => ids.every((id) => window.samStudio.annotations().find((a) => a.id === id)?.review_state === "rejected"),
    cfg.burst,
  );
  check("a teammate's bulk review reaches the workspace", reviewed.status === 200);

  check("no page errors", results.pageErrors.length === 0, results.pageErrors.join(" | "));
} catch (error) {
  exitCode = 1;
  results.error = error instanceof Error ? error.stack ?? error.message : String(error);
  console.error(results.error);
} finally {
  await browser.close();
  if (cfg.outFile) writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
