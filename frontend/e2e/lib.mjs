// Helpers shared by the browser scenarios (run.mjs, models.mjs): Chromium, login, clicks in
// image coordinates, and waiting for the mask a click gives.
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new page of `context`, signed in as `user`; `watch(page)` runs before it loads. */
export async function login(context, baseUrl, user, watch) {
  const page = await context.newPage();
  watch(page);
  await page.goto(`${baseUrl}/`);
  await page.waitForURL(/\/accounts\/login\//);
  await page.fill("#id_username", user.username);
  await page.fill("#id_password", user.password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/accounts/login")), page.click("button[type=submit]")]);
  return page;
}

export async function clickImage(page, x, y, options = {}) {
  const [cx, cy] = await page.evaluate(([ix, iy]) => window.samStudio.imageToClient(ix, iy), [x, y]);
  await page.mouse.click(cx, cy, options);
}

/** Wait until the workspace painted one more mask than `previousCount`. */
export async function waitForMask(page, previousCount) {
  try {
    await page.waitForFunction((n) => window.samStudio.latencies.length > n, previousCount, { timeout: 30_000 });
  } catch (error) {
    const state = await page.evaluate(() => window.samStudio?.state()).catch(() => null);
    const notice = await page.getByTestId("notice").textContent().catch(() => null);
    throw new Error(`no mask appeared: state ${JSON.stringify(state)}, notice ${notice}\n${error}`);
  }
}
