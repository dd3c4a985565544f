// Renders a bigbatch report in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core from tests/report/node), takes a screenshot, and prints as JSON what the
// browser drew: for every chart, each series' point count read from the laid-out path, its
// length and bounding box, and whether the browser hit-tests the path at its points; the
// heat-map cells; and, from the screenshot's pixels, how many have each run colour.
// Usage: node check_report.js REPORT.html SCREENSHOT.png
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { withPage } = require('./browser');

// The RGBA pixels of an 8-bit, non-interlaced PNG (what Chromium's screenshots are).
function decodePng(buf) {
  let pos = 8, width = 0, height = 0, colorType = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), type = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced PNG');
      colorType = data[9];
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const channels = { 2: 3, 6: 4 }[colorType];
  if (!channels) throw new Error(`PNG colour type ${colorType} not handled`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels, out = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] : 0, b = prev[i], c = i >= channels ? prev[i - channels] : 0;
      let p = 0;
      if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = (line[i] + p) & 255;
    }
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 3; k++) out[(y * width + x) * 4 + k] = line[x * channels + k];
      out[(y * width + x) * 4 + 3] = channels === 4 ? line[x * channels + 3] : 255;
    }
    prev = line;
  }
  return { width, height, pixels: out };
}

async function main() {
  const [report, screenshot] = process.argv.slice(2);
  if (!screenshot) throw new Error('usage: node check_report.js REPORT.html SCREENSHOT.png');
  await withPage({ viewport: { width: 1500, height: 1000 } }, async (page) => {
    const requests = [];
    page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
    await page.goto('file://' + path.resolve(report), { waitUntil: 'load' });
    const drawn = await page.evaluate(() => {
      // Whether the browser hit-tests the stroke of `el` within 3 px of (x, y): a vertex may
      // sit in a dash's gap or at a butt end, and 16 directions keep the probe inside a stroke
      // of 1.6 px.
      const hitNear = (el, x, y) => {
        if (document.elementsFromPoint(x, y).includes(el)) return true;
        for (const r of [1, 2, 3])
          for (let k = 0; k < 16; k++) {
            const a = (k * Math.PI) / 8;
            if (document.elementsFromPoint(x + r * Math.cos(a), y + r * Math.sin(a)).includes(el)) return true;
          }
        return false;
      };
      const charts = {};
      for (const svg of document.querySelectorAll('svg.chart')) {
        svg.scrollIntoView({ block: 'center' });  // hit-testing sees only the viewport
        const box = svg.getBoundingClientRect();
        const series = {};
        for (const p of svg.querySelectorAll('path.series')) {
          const d = p.getAttribute('d') || '';
          const commands = (d.match(/[ML]/g) || []).length;
          const length = commands > 1 ? p.getTotalLength() : 0;
          // Hit-test the path at up to 20 of its points, in page coordinates: the browser
          // laid it out there, on top of or under other series.
          let hits = 0, tried = 0;
          const matrix = p.getScreenCTM();
          const coords = d.match(/-?[0-9.]+,-?[0-9.]+/g) || [];
          const stride = Math.max(1, Math.floor(coords.length / 20));
          for (let i = 0; i < coords.length; i += stride) {
            const [x, y] = coords[i].split(',').map(Number);
            const pt = new DOMPoint(x, y).matrixTransform(matrix);
            tried++;
            if (hitNear(p, pt.x, pt.y)) hits++;
          }
          const b = p.getBBox();
          series[p.dataset.series] = { commands, declared: Number(p.dataset.points), length, hits, tried,
                                       width: b.width, height: b.height, stroke: p.getAttribute('stroke'),
                                       markers: svg.querySelectorAll(`circle.marker[data-series="${CSS.escape(p.dataset.series)}"]`).length };
        }
        charts[svg.id] = { width: box.width, height: box.height, series,
                           levels: [...svg.querySelectorAll('line.level')].map((l) => l.dataset.level) };
      }
      const heatmaps = {};
      for (const svg of document.querySelectorAll('svg.heatmap'))
        heatmaps[svg.id] = [...svg.querySelectorAll('rect.cell')].map((r) => Number(r.dataset.count));
      const tables = {};
      for (const t of document.querySelectorAll('table'))
        tables[t.id] = [...t.rows].map((r) => [...r.cells].map((c) => c.textContent));
      return { charts, heatmaps, tables, title: document.title };
    });
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = decodePng(fs.readFileSync(screenshot));
    const colours = {};
    for (const chart of Object.values(drawn.charts))
      for (const s of Object.values(chart.series)) colours[s.stroke] = 0;
    for (let i = 0; i < png.width * png.height; i++) {
      const r = png.pixels[i * 4], g = png.pixels[i * 4 + 1], b = png.pixels[i * 4 + 2];
      for (const c of Object.keys(colours)) {
        const cr = parseInt(c.slice(1, 3), 16), cg = parseInt(c.slice(3, 5), 16), cb = parseInt(c.slice(5, 7), 16);
        if (Math.abs(r - cr) + Math.abs(g - cg) + Math.abs(b - cb) < 24) colours[c]++;
      }
    }
    drawn.screenshot = { width: png.width, height: png.height, colours };
    drawn.requests = requests;
    console.log(JSON.stringify(drawn));
  });
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
