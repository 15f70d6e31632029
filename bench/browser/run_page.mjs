// Opens a page in headless Debian Chromium and prints window.__result as one JSON line.
// Usage: node run_page.mjs URL TIMEOUT_MS (env PLAYWRIGHT_CORE, CHROMIUM).
import { pathToFileURL } from 'node:url';

const [url, timeoutMs] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(process.env.PLAYWRIGHT_CORE).href);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await browser.newPage();
  page.on('console', (msg) => process.stderr.write(`[page] ${msg.text()}\n`));
  page.on('pageerror', (err) => process.stderr.write(`[pageerror] ${err}\n`));
  await page.goto(url);
  await page.waitForFunction(() => window.__result !== undefined || window.__error !== undefined,
    null, { timeout: Number(timeoutMs), polling: 200 });
  const error = await page.evaluate(() => window.__error);
  if (error) throw new Error(error);
  const result = await page.evaluate(() => JSON.stringify(window.__result));
  process.stdout.write(result + '\n');
} finally {
  await browser.close();
}
