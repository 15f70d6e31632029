// Measures the upload panel with 1,000 files in one drop, in headless Debian Chromium, on the
// built bundle (static/app/app.js) and a fake server (page.route) that answers each upload
// after DELAY_MS: time to queue and first render, long tasks (> 50 ms) while the queue drains,
// frames painted per second. Prints figures; asserts nothing.
//   node e2e/upload_bench.mjs            (after npm run build)
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const FILES = Number(process.env.FILES ?? 1000);
const DELAY_MS = Number(process.env.DELAY_MS ?? 20);
const here = dirname(fileURLToPath(import.meta.url));
const appDir = resolve(here, "../../static/app");
const origin = "http://bench.local";
const shell = `<!doctype html><html><head><link rel="stylesheet" href="/static/app/app.css"></head><body>
<script id="sam-config" type="application/json">{"user": {"id": 1, "username": "bench"}, "uploadChunkBytes": 8388608}</script>
<main class="page"><upload-panel></upload-panel></main>
<script type="module" src="/static/app/app.js"></script></body></html>`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium" });
const page = await browser.newPage();
let served = 0;
await page.route(`${origin}/**`, async (route) => {
  const url = new URL(route.request().url());
  if (url.pathname === "/") return route.fulfill({ contentType: "text/html", body: shell });
  if (url.pathname.startsWith("/static/app/")) {
    const file = resolve(appDir, url.pathname.slice("/static/app/".length));
    const type = file.endsWith(".css") ? "text/css" : "text/javascript";
    return route.fulfill({ contentType: type, body: readFileSync(file) });
  }
  if (url.pathname.endsWith("/images/") && route.request().method() === "POST") {
    const id = ++served;
    await new Promise((r) => setTimeout(r, DELAY_MS));
    const body = id % 10 === 0
      ? { created: [], duplicates: [{ name: `f${id}.png`, sha256: "0", existing_id: 1 }] }
      : { created: [{ id, original_name: `f${id}.png` }], duplicates: [] };
    return route.fulfill({ status: 201, contentType: "application/json", body: JSON.stringify(body) });
  }
  return route.fulfill({ status: 404, body: "" });
});
await page.goto(`${origin}/`);
await page.waitForFunction(() => customElements.get("upload-panel"));

const figures = await page.evaluate(async (count) => {
  const longTasks = [];
  new PerformanceObserver((list) => longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
  const files = Array.from({ length: count }, (_, i) => ({
    file: new File([new Uint8Array(1024 + i)], `f${i}.png`, { type: "image/png" }),
    path: `folder/f${i}.png`,
  }));
  const panel = document.querySelector("upload-panel");
  const t0 = performance.now();
  panel.add({ files, skipped: 0 });
  const queued = performance.now() - t0;
  await panel.updateComplete;
  await new Promise((r) => requestAnimationFrame(() => r()));
  const firstPaint = performance.now() - t0;
  const rows = document.querySelectorAll("[data-testid=upload-row]").length;
  let frames = 0;
  let counting = true;
  const tick = () => {
    frames++;
    if (counting) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const drainStart = performance.now();
  while (!/(\d+)\/(\d+) files/.test(document.querySelector("[data-testid=upload-summary]")?.textContent ?? "") ||
    RegExp.$1 !== RegExp.$2) {
    await new Promise((r) => setTimeout(r, 50));
  }
  counting = false;
  const drain = performance.now() - drainStart;
  return {
    queued,
    firstPaint,
    rows,
    drain,
    fps: (frames * 1000) / drain,
    longTasks: longTasks.length,
    longestTask: Math.max(0, ...longTasks),
    summary: document.querySelector("[data-testid=upload-summary]")?.textContent,
  };
}, FILES);
console.log(
  `${FILES} files, fake server ${DELAY_MS} ms per upload: queued in ${figures.queued.toFixed(1)} ms, ` +
    `first render (${figures.rows} rows) ${figures.firstPaint.toFixed(1)} ms; drained in ${(figures.drain / 1000).toFixed(1)} s ` +
    `at ${figures.fps.toFixed(0)} frames/s, ${figures.longTasks} long tasks (longest ${figures.longestTask.toFixed(0)} ms); ` +
    `"${figures.summary}"`,
);
await browser.close();
