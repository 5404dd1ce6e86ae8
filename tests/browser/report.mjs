// The compliance report's HTML page in Debian's chromium (headless, driven by
// playwright-core; never a downloaded browser): it loads with no error and nothing blocked,
// shows its charts, every framework, and the names behind the controls not met, fits a
// laptop's and a phone's width, and is saved as a screenshot.
//
//   node tests/browser/report.mjs REPORT.html SCREENSHOT.png
//
// REPORT.html is what examples/compliance/run.sh writes.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [page_path, shot] = process.argv.slice(2);
assert.ok(page_path && shot, 'usage: node report.mjs REPORT.html SCREENSHOT.png');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push(`fetched ${r.url()}`); });
  await page.goto(pathToFileURL(page_path).href, { waitUntil: 'load' });

  assert.match(await page.title(), /^aim compliance report/);
  assert.equal(await page.locator('h1').innerText(), 'Compliance report');

  // The charts are drawn, and drawn at a size someone can read.
  for (const chart of ['svg.ring', 'svg.trend', 'svg.bars', 'svg.findings']) {
    const box = await page.locator(chart).boundingBox();
    assert.ok(box && box.width > 100 && box.height > 60, `${chart}: ${JSON.stringify(box)}`);
  }
  const score = Number(await page.locator('svg.ring text').first().textContent());
  assert.ok(score >= 0 && score <= 100, `score ${score}`);
  const arc = await page.locator('svg.ring circle').nth(1).getAttribute('stroke-dasharray');
  assert.ok(Number(arc.split(' ')[0]) > 0, `the ring shows no score: ${arc}`);

  // Every framework, each with its controls.
  const sections = { owasp_nhi: 10, owasp_agentic: 10, nist_csf: 10, nist_ai_rmf: 10, csa_maestro: 8 };
  for (const [id, rows] of Object.entries(sections)) {
    await page.locator(`section#${id}`).scrollIntoViewIfNeeded();
    assert.ok(await page.locator(`section#${id}`).isVisible(), id);
    assert.equal(await page.locator(`section#${id} tbody tr`).count(), rows, id);
  }
  const ids = await page.locator('section#owasp_agentic td.id').allInnerTexts();
  assert.deepEqual(ids, ['ASI01', 'ASI02', 'ASI03', 'ASI04', 'ASI05', 'ASI06', 'ASI07', 'ASI08', 'ASI09', 'ASI10']);

  // The controls not met, each with the accounts behind it; the registry's faults by name.
  const attention = page.locator('section#not-met');
  assert.match(await attention.locator('h2').innerText(), /^Not met \(\d+\)$/);
  const failing = await attention.locator('ul.attention > li').count();
  assert.ok(failing > 0, 'the example data fails some control');
  for (let i = 0; i < failing; i++) {
    assert.ok(await attention.locator('ul.attention > li').nth(i).locator('.names code').count() > 0,
      `not-met item ${i} names nobody`);
  }
  const nhi1 = await page.locator('section#owasp_nhi tbody tr').first().innerText();
  assert.match(nhi1, /svc-billing-export/);
  const nhi4 = await page.locator('section#owasp_nhi tbody tr').nth(3).innerText();
  assert.match(nhi4, /bot-legacy-reports/);

  // Nothing wider than a laptop's window, nor a phone's.
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(await overflow() <= 0, `wider than 1280 px by ${await overflow()}`);
  await page.screenshot({ path: shot, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  assert.ok(await overflow() <= 0, `wider than a 390 px phone by ${await overflow()}`);

  assert.deepEqual(problems, [], 'console errors, page errors or outside requests');
  const size = statSync(shot).size;
  assert.ok(size > 50_000, `the screenshot is ${size} bytes: blank?`);
  console.log(`report page ok: score ${score}, ${failing} controls not met, screenshot ${shot} (${size} bytes)`);
} finally {
  await browser.close();
}
