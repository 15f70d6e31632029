// Browser test of the project pages (playwright-core, Debian Chromium), started by
// tests/e2e/test_project_pages.py against a server it runs. Every element is found by its role
// and accessible name. Reads its scenario from the JSON file named by SAM_E2E_CONFIG:
//   { baseUrl, owner: {username, password}, invitee: {username, password},
//     seededProject, newProject, outFile, screenshotDir }
// The owner creates a project with two labels (the server's refusal of a repeated label name
// shown at that row first), invites the invitee (and an unknown e-mail: same answer), who signs in and accepts;
// the owner cannot leave as the last owner; on the seeded project (annotations carry its
// labels) the owner sees label counts, recolours a label, deletes a used label moving its
// annotations, is held to the settings' bounds; then archives the new project. Exits 0 when
// every check passed and no page error happened.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.env.SAM_E2E_CONFIG, "utf8"));
const results = { checks: [], pageErrors: [], consoleErrors: [] };
const started = Date.now();
// The steps that provoke a refusal on purpose: the server answers 400 there.
let expectRefusal = false;

function log(message) {
  console.log(`[pages +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

function check(name, ok, detail = "") {
  results.checks.push({ name, ok, detail });
  log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  if (!ok) throw new Error(`check failed: ${name} ${detail}`);
}

async function shot(page, name) {
  if (!cfg.screenshotDir) return;
  mkdirSync(cfg.screenshotDir, { recursive: true });
  await page.screenshot({ path: join(cfg.screenshotDir, name) });
}

async function login(browser, user, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => {
    results.pageErrors.push(`${who}: ${error.message}`);
    log(`page error (${who}): ${error.message}`);
  });
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    if (expectRefusal && /status of 400/.test(msg.text())) return;
    results.consoleErrors.push(`${who}: ${msg.text()}`);
    log(`console error (${who}): ${msg.text()}`);
  });
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("textbox", { name: "Username" }).fill(user.username);
  await page.getByRole("textbox", { name: "Password" }).fill(user.password);
  await Promise.all([
    page.waitForURL((url) => !url.pathname.startsWith("/accounts/login")),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  await page.getByRole("heading", { name: "Projects", exact: true }).waitFor();
  return page;
}

const status = (page, text) => page.getByRole("status").filter({ hasText: text });
const projectNav = (page) => page.getByRole("navigation", { name: "Project" });

async function openProjectPage(page, project, section) {
  await page.goto(`${cfg.baseUrl}/`);
  await page.getByRole("link", { name: project, exact: true }).click();
  await projectNav(page).getByRole("link", { name: section, exact: true }).click();
  await page.getByRole("heading", { name: section, exact: true, level: 1 }).waitFor();
}

async function createProject(owner) {
  const name = cfg.newProject;
  await owner.getByRole("button", { name: "New project" }).click();
  const dialog = owner.getByRole("dialog", { name: "New project" });
  await dialog.getByRole("textbox", { name: "Name", exact: true }).fill(name);
  await dialog.getByRole("textbox", { name: "Description" }).fill("Birds and their nests, spring survey");
  // Two labels with one name: the server refuses the second one at its row.
  await dialog.getByRole("textbox", { name: "Label 1 name" }).fill("bird");
  await dialog.getByRole("textbox", { name: "Label 1 colour" }).fill("#2e8b57");
  await dialog.getByRole("button", { name: "Add label" }).click();
  await dialog.getByRole("textbox", { name: "Label 2 name" }).fill("bird");
  const tiny = dialog.getByRole("option", { name: /SAM tiny/ });
  check("a present model is offered", !(await tiny.isDisabled()));
  check("review policy defaults to pending review", await dialog.getByRole("radio", { name: "Pending review" }).isChecked());
  expectRefusal = true;
  await dialog.getByRole("button", { name: "Create project" }).click();
  const error = dialog.getByRole("listitem").filter({ hasText: "Another label is named 'bird'." });
  await error.getByRole("alert").waitFor();
  expectRefusal = false;
  check(
    "the server's validation error is shown at its field",
    await error.getByRole("textbox", { name: "Label 2 name" }).isVisible(),
  );
  await shot(owner, "new-project.png");
  await dialog.getByRole("textbox", { name: "Label 2 name" }).fill("nest");
  await dialog.getByRole("button", { name: "Create project" }).click();
  await owner.waitForURL(/\/projects\/\d+$/);
  await projectNav(owner).getByText(name).waitFor();
  check("the new project opens", true, owner.url());
}

async function invite(owner, who) {
  await owner.getByRole("textbox", { name: "Username or e-mail" }).fill(who);
  await owner.getByRole("combobox", { name: "Role", exact: true }).selectOption("annotator");
  await owner.getByRole("button", { name: "Invite", exact: true }).click();
  const sent = status(owner, `${who} as annotator: Invitation sent if the user exists.`);
  await sent.waitFor();
  return (await sent.textContent()).replace(who, "WHO");
}

async function settingsOfSeeded(owner) {
  const project = cfg.seededProject;
  await openProjectPage(owner, project.name, "Settings");
  const [used, other] = project.labels;
  const row = (label) =>
    owner.getByRole("listitem").filter({ has: owner.getByRole("textbox", { name: `Name of label ${label}`, exact: true }) });
  await row(used.name).getByText(`${used.count} annotations`).waitFor();
  check("label counts", await row(other.name).getByText(`${other.count} annotation`).isVisible());
  await owner.getByRole("textbox", { name: `Colour of label ${other.name}` }).fill("#123456");
  await status(owner, `Label ${other.name} recoloured.`).waitFor();
  check("label recoloured", (await owner.getByRole("textbox", { name: `Colour of label ${other.name}` }).inputValue()) === "#123456");

  const points = owner.getByRole("spinbutton", { name: "Points per side" });
  const max = Number(await points.getAttribute("max"));
  await points.fill(String(max + 1));
  await owner.getByRole("button", { name: "Save defaults" }).click();
  await owner.getByRole("alert").filter({ hasText: `From 1 to ${max}.` }).waitFor();
  check("a setting beyond the server's bound is refused in place", true);
  await points.fill("24");
  await owner.getByRole("button", { name: "Save defaults" }).click();
  await status(owner, "Defaults saved.").waitFor();
  // The page scrolls inside the app shell: a tall window shows the labels and the defaults.
  await owner.setViewportSize({ width: 1280, height: 1500 });
  await owner.getByRole("heading", { name: "Settings", level: 1 }).scrollIntoViewIfNeeded();
  await shot(owner, "settings.png");
  await owner.setViewportSize({ width: 1280, height: 820 });

  await owner.getByRole("button", { name: `Delete label ${used.name}` }).click();
  const dialog = owner.getByRole("dialog", { name: `Delete label ${used.name}?` });
  await dialog.getByText(`${used.count} annotations carry this label`).waitFor();
  check("moving the annotations is the default", await dialog.getByRole("radio", { name: "Move them to another label" }).isChecked());
  await dialog.getByRole("combobox", { name: "Label that takes them over" }).selectOption({ label: other.name });
  await dialog.getByRole("button", { name: "Delete label" }).click();
  await status(owner, `Label ${used.name} deleted; its annotations moved to ${other.name}.`).waitFor();
  await row(other.name).getByText(`${used.count + other.count} annotations`).waitFor();
  check("the deleted label's annotations moved", true);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
let exitCode = 0;
try {
  const owner = await login(browser, cfg.owner, "owner");
  await createProject(owner);

  await projectNav(owner).getByRole("link", { name: "Members", exact: true }).click();
  await owner.getByRole("heading", { name: "Members", level: 1 }).waitFor();
  const known = await invite(owner, cfg.invitee.username);
  const unknown = await invite(owner, "nobody-here@example.com");
  check("known and unknown invitees get the same answer", known === unknown, known);
  await owner.getByRole("button", { name: `Cancel invitation to ${cfg.invitee.username}` }).waitFor();

  const invitee = await login(browser, cfg.invitee, "invitee");
  const invitations = invitee.getByRole("region", { name: "Invitations" });
  await invitations.getByRole("button", { name: `Decline invitation to ${cfg.newProject}` }).waitFor();
  await shot(invitee, "projects.png");
  await invitations.getByRole("button", { name: `Accept invitation to ${cfg.newProject}` }).click();
  await status(invitee, `You joined ${cfg.newProject} as annotator.`).waitFor();
  check("the invitee sees the project", await invitee.getByRole("link", { name: cfg.newProject, exact: true }).isVisible());

  await owner.reload();
  await owner.getByRole("combobox", { name: `Role of ${cfg.invitee.username}` }).waitFor();
  check("the invitee is a member", (await owner.getByRole("combobox", { name: `Role of ${cfg.invitee.username}` }).inputValue()) === "annotator");
  await shot(owner, "members.png");
  expectRefusal = true;
  await owner.getByRole("button", { name: "Leave project" }).click();
  await owner.getByRole("button", { name: "Yes, leave" }).click();
  await owner.getByRole("alert").filter({ hasText: "at least one owner" }).waitFor();
  expectRefusal = false;
  check("the last owner cannot leave", true);

  await settingsOfSeeded(owner);

  await openProjectPage(owner, cfg.newProject, "Settings");
  await owner.getByRole("button", { name: "Archive project" }).click();
  await owner.getByRole("button", { name: "Yes, archive it" }).click();
  await status(owner, "Project archived.").waitFor();
  await owner.goto(`${cfg.baseUrl}/`);
  const archived = owner.getByRole("region", { name: "Archived" });
  await archived.getByRole("link", { name: cfg.newProject, exact: true }).waitFor();
  check("the archived project is listed apart", true);
  check("no page errors", results.pageErrors.length === 0, results.pageErrors.join(" | "));
  check("no unexpected console errors", results.consoleErrors.length === 0, results.consoleErrors.join(" | "));
} catch (error) {
  exitCode = 1;
  results.error = String(error?.stack ?? error);
  log(`ERROR ${results.error}`);
} finally {
  await browser.close();
  writeFileSync(cfg.outFile, JSON.stringify(results, null, 2));
}
process.exit(exitCode);
