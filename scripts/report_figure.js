// Screenshots one chart of a bigbatch report as a PNG, in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core, which scripts/setup.sh installs).
// Usage: node scripts/report_figure.js REPORT.html CHART_ID OUT.png
const path = require('path');
const { withPage } = require('../tests/report/browser');

async function main() {
  const [report, id, out] = process.argv.slice(2);
  if (!out) throw new Error('usage: node scripts/report_figure.js REPORT.html CHART_ID OUT.png');
  await withPage({ deviceScaleFactor: 2 }, async (page) => {
    await page.goto('file://' + path.resolve(report), { waitUntil: 'load' });
    const chart = await page.$('#' + id);
    if (!chart) throw new Error(`${report} has no chart '${id}'`);
    await chart.screenshot({ path: out });
  });
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
