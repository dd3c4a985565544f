// Headless Chromium for the report's checks and figures: Debian's /usr/bin/chromium driven by
// playwright-core (tests/report/node), with a fresh profile and no network of its own.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require(path.join(__dirname, 'node', 'node_modules', 'playwright-core'));

// Calls use(page) with a page of a new browser; the browser and its profile go afterwards.
async function withPage(options, use) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bigbatch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    ...options,
    // Without the background services Chromium makes no connection of its own: this machine's
    // closed network refuses them, many at a time.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  try {
    return await use(await context.newPage());
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

module.exports = { withPage };
