// The whole job in the SPA (playwright-core, Debian Chromium), started by
// tests/e2e/test_full_job.py against a server whose database holds one admin and nothing else.
// Elements are found by role and accessible name; the only page internals read are the
// workspace's `window.samStudio` hooks (embedding state, image → screen coordinates). Reads its
// scenario from the JSON file named by SAM_E2E_CONFIG:
//   { baseUrl, owner: {username, password}, annotator: {username, email, password}, project,
//     labels: [[name, colour], ...], files: [path, ...], images, shapes: {name: {click}},
//     reason, outFile, exportFile, screenshotDir }
// Exits 0 when every check passed and no page or console error happened; writes what the
// Python side checks (the accepted annotation, the deletion's delay) to outFile.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG ?? "", "utf8"));
const results = { checks: [], pageErrors: [], consoleErrors: [] };
const started = Date.now();
// Answers the app expects and handles: an embedding not ready yet (409), a decoder still
// being prepared (503).
const EXPECTED = [/status of 409/, /status of 503/];
const DELETION_LIMIT_MS = 2000;

function log(message) {
  console.log(`[full +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

function check(name, ok, detail = "") {
  results.checks.push({ name, ok, detail });
  log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) throw new Error(`check failed: ${name} ${detail}`);
}

async function newPage(browser, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (error) => {
    results.pageErrors.push(`${who}: ${error.message}`);
    log(`page error (${who}): ${error.message}`);
  });
  page.on("console", (msg) => {
    if (msg.type() !== "error" || EXPECTED.some((re) => re.test(msg.text()))) return;
    results.consoleErrors.push(`${who}: ${msg.text()}`);
    log(`console error (${who}): ${msg.text()}`);
  });
  return page;
}

async function shot(page, name) {
  if (!cfg.screenshotDir) return;
  mkdirSync(cfg.screenshotDir, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshotDir, name) });
}

const status = (page, text) => page.getByRole("status").filter({ hasText: text });
const projectNav = (page) => page.getByRole("navigation", { name: "Project" });
const imageOf = (url) => Number(/\/images\/(\d+)/.exec(url)?.[1] ?? NaN);

async function openSection(page, section) {
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("link", { name: cfg.project, exact: true }).click();
  await projectNav(page).getByRole("link", { name: section, exact: true }).click();
}

async function signIn(page, user) {
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("textbox", { name: "Username" }).fill(user.username);
  await page.getByLabel("Password", { exact: true }).fill(user.password);
  await Promise.all([
    page.waitForURL((url) => !url.pathname.startsWith("/accounts/")),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  await page.getByRole("heading", { name: "Projects", exact: true }).waitFor();
}

async function signUp(page, user) {
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByRole("heading", { name: "Create an account" }).waitFor();
  await page.getByRole("textbox", { name: "Username" }).fill(user.username);
  await page.getByRole("textbox", { name: "E-mail" }).fill(user.email);
  await page.getByLabel("Password", { exact: true }).fill(user.password);
  await page.getByLabel("Password confirmation").fill(user.password);
  await shot(page, "signup.png");
  await Promise.all([
    page.waitForURL((url) => !url.pathname.startsWith("/accounts/")),
    page.getByRole("button", { name: "Create account" }).click(),
  ]);
  await page.getByRole("heading", { name: "Projects", exact: true }).waitFor();
}

async function createProject(owner) {
  await owner.getByRole("button", { name: "New project" }).click();
  const dialog = owner.getByRole("dialog", { name: "New project" });
  await dialog.getByRole("textbox", { name: "Name", exact: true }).fill(cfg.project);
  for (const [i, [name, colour]] of cfg.labels.entries()) {
    if (i > 0) await dialog.getByRole("button", { name: "Add label" }).click();
    await dialog.getByRole("textbox", { name: `Label ${i + 1} name` }).fill(name);
    await dialog.getByRole("textbox", { name: `Label ${i + 1} colour` }).fill(colour);
  }
  check("review policy: pending review", await dialog.getByRole("radio", { name: "Pending review" }).isChecked());
  await dialog.getByRole("button", { name: "Create project" }).click();
  await owner.waitForURL(/\/projects\/\d+$/);
  await projectNav(owner).getByText(cfg.project).waitFor();
  check("project created", true, owner.url());
}

async function upload(owner) {
  const [chooser] = await Promise.all([owner.waitForEvent("filechooser"), owner.getByRole("button", { name: "Upload files…" }).click()]);
  await chooser.setFiles(cfg.files);
  const overall = owner.getByRole("progressbar", { name: "Overall upload progress" });
  await overall.waitFor();
  check("the upload shows its progress bar", await overall.isVisible());
  const files = cfg.files.length;
  await status(owner, `${files}/${files} files · ${cfg.images} images added`).waitFor({ timeout: 300_000 });
  check("12 images and a zip of 3 uploaded", true);
  for (const name of Object.keys(cfg.shapes)) await owner.getByRole("checkbox", { name: `Select ${name}` }).waitFor();
  check("the grid lists every image", true);
}

async function assign(owner, names) {
  await owner.getByRole("checkbox", { name: `Select ${names[0]}` }).click();
  for (const name of names.slice(1)) await owner.getByRole("checkbox", { name: `Select ${name}` }).click();
  await status(owner, `${names.length} selected`).waitFor();
  await owner.getByRole("combobox", { name: "Assign to" }).selectOption({ label: `${cfg.annotator.username} (annotator)` });
  await owner.getByRole("button", { name: `Assign ${names.length}` }).click();
  await status(owner, `${names.length} images assigned to ${cfg.annotator.username}`).waitFor();
  check("images assigned to the annotator", true);
}

// The workspace shows `previous` until the next image's record arrives (its embedding starts
// loading in the same turn): wait for another name, then for the embedding and the decoder.
async function waitForWorkspace(page, previous = null) {
  await page.waitForURL(/\/images\/\d+$/);
  const crumb = page.getByRole("navigation", { name: "Breadcrumbs" }).locator("span");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const name = ((await crumb.textContent()) ?? "").trim();
    if (name !== "…" && name !== previous) break;
    if (Date.now() > deadline) throw new Error(`the workspace still shows ${name}`);
    await page.waitForTimeout(100);
  }
  await page.waitForFunction(
    () => {
      const s = window.samStudio?.state();
      return s && s.embedding === "ready" && s.model;
    },
    null,
    { timeout: 240_000 },
  );
  return (await crumb.textContent()).trim();
}

const annotationButtons = (page) => page.getByRole("region", { name: "Annotations" }).getByRole("button", { name: /^Select annotation \d+$/ });

// Click the scene's largest shape, pick the label, accept the mask; returns the new id.
async function annotate(page, name, label) {
  const before = await annotationButtons(page).count();
  const [x, y] = cfg.shapes[name].click;
  const [cx, cy] = await page.evaluate(([ix, iy]) => window.samStudio.imageToClient(ix, iy), [x, y]);
  await page.mouse.click(cx, cy);
  await page.getByRole("group", { name: "Candidate masks" }).waitFor({ timeout: 30_000 });
  await page.getByRole("group", { name: "Labels" }).getByRole("button", { name: label, exact: true }).click();
  await page.getByRole("region", { name: "Mask" }).getByRole("button", { name: /^Accept/ }).click();
  await annotationButtons(page).nth(before).waitFor({ timeout: 15_000 });
  const id = Number(/(\d+)$/.exec(await annotationButtons(page).nth(before).getAttribute("aria-label"))[1]);
  const chosen = page.getByRole("combobox", { name: `Label of annotation ${id}` });
  check(`mask accepted with label ${label} on ${name}`, (await chosen.locator("option:checked").textContent()).trim() === label, `annotation ${id}`);
  return id;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
let exitCode = 0;
try {
  // 1. The admin signs in, creates the project and invites a newcomer by e-mail.
  const owner = await newPage(browser, "owner");
  await signIn(owner, cfg.owner);
  check("an empty database lists no project", (await owner.getByRole("link", { name: cfg.project }).count()) === 0);
  await createProject(owner);
  await projectNav(owner).getByRole("link", { name: "Members", exact: true }).click();
  await owner.getByRole("textbox", { name: "Username or e-mail" }).fill(cfg.annotator.email);
  await owner.getByRole("combobox", { name: "Role", exact: true }).selectOption("annotator");
  await owner.getByRole("button", { name: "Invite", exact: true }).click();
  await status(owner, `${cfg.annotator.email} as annotator: Invitation sent if the user exists.`).waitFor();
  check("invitation sent", true);

  // 2. She signs up in her own browser context, sees the invitation and accepts it.
  const annotator = await newPage(browser, "annotator");
  await signUp(annotator, cfg.annotator);
  const invitations = annotator.getByRole("region", { name: "Invitations" });
  await invitations.getByRole("button", { name: `Accept invitation to ${cfg.project}` }).click();
  await status(annotator, `You joined ${cfg.project} as annotator.`).waitFor();
  check("the newcomer joined the project", await annotator.getByRole("link", { name: cfg.project, exact: true }).isVisible());

  // 3. The owner uploads 12 images and a zip of 3 through the file picker, then assigns four.
  await openSection(owner, "Images");
  await upload(owner);
  const names = Object.keys(cfg.shapes).sort();
  await assign(owner, names.slice(0, 4));

  // 4. The annotator starts her queue: a click on a shape, a mask accepted with a label,
  // Done → the next image, annotated too.
  await openSection(annotator, "Queue");
  await annotator.getByRole("list", { name: "Assigned images" }).getByRole("link").nth(3).waitFor();
  await annotator.getByRole("button", { name: /^Start/ }).click();
  const firstName = await waitForWorkspace(annotator);
  const firstImage = imageOf(annotator.url());
  const rejected = await annotate(annotator, firstName, cfg.labels[0][0]);
  await annotator.getByRole("button", { name: /^Done, next image/ }).click();
  await annotator.waitForURL((url) => /\/images\/\d+$/.test(url.pathname) && imageOf(url.href) !== firstImage);
  const secondName = await waitForWorkspace(annotator, firstName);
  check("Done opens the next image of the queue", secondName !== firstName, `${firstName} → ${secondName}`);
  const accepted = await annotate(annotator, secondName, cfg.labels[0][0]);
  results.accepted = { id: accepted, image: secondName };

  // 5. The owner rejects the first with a reason and accepts the second on the review page.
  await openSection(owner, "Review");
  await owner.getByRole("combobox", { name: "Annotator" }).selectOption({ label: cfg.annotator.username });
  await owner.getByRole("button", { name: `Reject annotation ${rejected}` }).click();
  const dialog = owner.getByRole("dialog", { name: "Reject 1 annotation" });
  await dialog.getByRole("textbox", { name: /^Reason/ }).fill(cfg.reason);
  await dialog.getByRole("button", { name: "Reject", exact: true }).click();
  await owner.getByRole("button", { name: `Reject annotation ${rejected}` }).waitFor({ state: "detached" });
  await owner.getByRole("button", { name: `Accept annotation ${accepted}` }).click();
  await owner.getByRole("button", { name: `Accept annotation ${accepted}` }).waitFor({ state: "detached" });
  check("one annotation rejected with a reason, another accepted", true);

  // 6. The annotator sees the rejection in her queue and on the image, which she opens.
  await openSection(annotator, "Queue");
  await annotator.getByRole("list", { name: `Rejected work on ${firstName}` }).getByText(cfg.reason).waitFor();
  check("the queue shows the rejection with its reason", true);
  await annotator.getByRole("button", { name: /^Start/ }).click();
  check("Start reopens the rejected image", (await waitForWorkspace(annotator)) === firstName);
  await annotator.getByRole("region", { name: "Annotations" }).getByText(`Rejected: ${cfg.reason}`).waitFor();
  check("the workspace shows the rejection", true);

  // 7. The owner deletes that annotation from the same image; it leaves the annotator's
  // open page within 2 s.
  await owner.getByRole("combobox", { name: "State" }).selectOption({ label: "Rejected" });
  await owner.getByRole("link", { name: `Open the image of annotation ${rejected}` }).click();
  await waitForWorkspace(owner);
  const doomed = annotator.getByRole("button", { name: `Select annotation ${rejected}` });
  check("the annotator has it on screen", await doomed.isVisible());
  await owner.getByRole("button", { name: `Delete annotation ${rejected}` }).click();
  const clicked = Date.now();
  await owner.getByRole("button", { name: `Select annotation ${rejected}` }).waitFor({ state: "detached" });
  await doomed.waitFor({ state: "detached", timeout: DELETION_LIMIT_MS });
  results.deletionSeenMs = Date.now() - clicked;
  check("the deletion reaches the annotator's open image within 2 s", results.deletionSeenMs <= DELETION_LIMIT_MS, `${results.deletionSeenMs} ms`);

  // 8. Export COCO polygons from the dialog and download the archive.
  await openSection(owner, "Images");
  await owner.getByRole("button", { name: "Export…" }).click();
  const exportDialog = owner.getByRole("dialog", { name: "Export" });
  await exportDialog.getByRole("combobox", { name: "Format" }).selectOption({ label: "COCO (polygons)" });
  await exportDialog.getByRole("button", { name: "Start export" }).click();
  const link = exportDialog.getByRole("link", { name: /^Download export \d+ \(COCO \(polygons\)\)/ }).first();
  await link.waitFor({ timeout: 120_000 });
  const [download] = await Promise.all([owner.waitForEvent("download"), link.click()]);
  mkdirSync(dirname(cfg.exportFile), { recursive: true });
  await download.saveAs(cfg.exportFile);
  check("export downloaded", true);

  check("no page errors", results.pageErrors.length === 0, results.pageErrors.join(" | "));
  check("no console errors", results.consoleErrors.length === 0, results.consoleErrors.join(" | "));
} catch (error) {
  exitCode = 1;
  results.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log(`ERROR ${results.error}`);
} finally {
  await browser.close();
  writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
