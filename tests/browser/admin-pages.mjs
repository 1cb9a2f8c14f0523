#!/usr/bin/env node
// The admin pages in a real browser (SPEC §9; issue 14 item 7): Debian's chromium, headless, driven by
// playwright-core. Run by tests/functional/test_admin_pages_browser.cpp, which starts the daemon, the
// OAuth test peer and a relay target and passes what it set up as JSON in ALUMIA_BROWSER_TEST:
//
//   {chromium, control, loginLink, endpointId, received, eventId, deadJobId, connectorSlug}
//
// Steps (each prints "ok: …" or throws; exit 0 only when all passed; bounded by timeouts):
//   1. log in through the link: the events page, the endpoint's row and its counts;
//   2. the same link refused the second time (a fresh profile);
//   3. a cross-site POST (a page on http://localhost:<port> posting the retry form) refused, the job still dead;
//   4. retry the dead job with its button and see its state change to succeeded;
//   5. the connectors page: Connect opens the OAuth peer's login form in a new tab; after the login and
//      consent there, the originating page turns to Connected without a reload.
import http from 'node:http';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.env.ALUMIA_BROWSER_TEST ?? '{}');
const k_step_ms = 20000;

function ok(message) { process.stdout.write(`ok: ${message}\n`); }
function check(cond, message) { if (!cond) throw new Error(`check failed: ${message}`); }

// Reloads until `probe()` is true or the deadline passes.
async function until(page, probe, what, reload = true) {
  const deadline = Date.now() + k_step_ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(200);
    if (reload) await page.reload();
  }
}

// A page on another site (localhost, not 127.0.0.1) that posts the retry form to the daemon at once.
function attackServer(action) {
  const html = `<!doctype html><html><body><form id="f" method="post" action="${action}">` +
    '<input type="hidden" name="csrf" value="guessed"><input type="hidden" name="back" value="/admin/connector-events">' +
    '</form><script>document.getElementById("f").submit()</script></body></html>';
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const args = ['--no-first-run', '--no-default-browser-check', '--disable-dev-shm-usage'];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');  // chromium refuses root otherwise
const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args, timeout: k_step_ms });
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(k_step_ms);
  const page = await context.newPage();

  // 1. The link logs in and lands on the clean URL.
  const landed = await page.goto(cfg.loginLink);
  check(landed.status() === 200, `the login link landed with ${landed.status()}`);
  check(page.url() === `${cfg.control}/admin/connector-events`, `landed on ${page.url()}`);
  const row = page.locator(`tr[data-endpoint="${cfg.endpointId}"]`);
  check(await row.count() === 1, 'the endpoint row is shown');
  const received = await row.locator('[data-count="received"]').textContent();
  check(received === String(cfg.received), `received count ${received}, expected ${cfg.received}`);
  check(await page.locator(`[data-retry="${cfg.deadJobId}"]`).count() === 1, 'the dead job has a Retry button');
  ok('logged in through the link; the endpoint row and its counts are shown');

  // 2. The link again, in a fresh profile: refused.
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  const second = await otherPage.goto(cfg.loginLink);
  check(second.status() === 403, `second use of the link answered ${second.status()}`);
  check((await otherPage.content()).includes('already used or has expired'), 'the refusal says why');
  await other.close();
  ok('the login link is refused the second time');

  // 3. A cross-site POST: refused, the job unchanged.
  const server = await attackServer(`${cfg.control}/admin/jobs/${cfg.deadJobId}/retry`);
  try {
    const attackUrl = `http://localhost:${server.address().port}/attack`;
    const refused = page.waitForResponse((r) => r.url().endsWith(`/admin/jobs/${cfg.deadJobId}/retry`));
    await page.goto(attackUrl);
    const answer = await refused;
    check(answer.status() === 403, `the cross-site POST answered ${answer.status()}`);
  } finally {
    server.close();
  }
  await page.goto(`${cfg.control}/admin/connector-events`);
  const state = page.locator(`tr[data-event="${cfg.eventId}"] td.state`);
  check(await state.textContent() === 'dead', 'the job is still dead after the cross-site POST');
  ok('a cross-site POST is refused and changes nothing');

  // 4. Retry with the button: the job goes through.
  await Promise.all([page.waitForURL(/\/admin\/connector-events\?note=/), page.click(`[data-retry="${cfg.deadJobId}"]`)]);
  check((await page.locator('#note').textContent()).includes('queued again'), 'the page says the job was queued');
  await until(page, async () => (await state.textContent()) === 'succeeded', 'the retried job to succeed');
  ok('the dead job was retried from the page and its state changed to succeeded');

  // 5. Connect from the connectors page.
  await page.goto(`${cfg.control}/admin/connectors`);
  await page.evaluate(() => { window.alumiaNoReload = 'still here'; });
  const cell = page.locator(`tr[data-connector="${cfg.connectorSlug}"] .conn-state`);
  check(await cell.getAttribute('data-state') === 'none', `the connector starts ${await cell.getAttribute('data-state')}`);
  const [tab] = await Promise.all([context.waitForEvent('page'), page.click(`[data-connect="${cfg.connectorSlug}"]`)]);
  await tab.waitForLoadState();
  await tab.locator('input[name="login"]').waitFor();
  check(new URL(tab.url()).origin !== cfg.control, `the new tab is at the provider (${tab.url()})`);
  // A normal tab that keeps its opener (rel=opener), so the result page can also postMessage to it.
  check(await tab.evaluate(() => window.opener !== null), 'the new tab has the connectors page as its opener');
  await tab.fill('input[name="login"]', 'alice');
  await tab.fill('input[name="password"]', 'any');
  await Promise.all([tab.waitForNavigation(), tab.click('button[type="submit"]')]);
  if (await tab.locator('button[type="submit"]').count()) await tab.click('button[type="submit"]');  // consent
  await until(page, async () => (await cell.getAttribute('data-state')) === 'connected', 'the page to turn Connected',
    /*reload=*/false);
  check(await cell.textContent() === 'Connected', 'the row reads Connected');
  check(await page.evaluate(() => window.alumiaNoReload) === 'still here', 'the page was not reloaded');
  const note = page.locator('#oauth-note');
  await until(page, async () => !(await note.isHidden()), 'the announcement to arrive', false);
  check((await note.textContent()).startsWith('Connected'), `the announcement reads ${await note.textContent()}`);
  ok('Connect in a new tab against the OAuth peer turned the originating page Connected without a reload');
} catch (e) {
  // What the browser showed when a step failed, for the test's log.
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    process.stderr.write(`page ${p.url()}:\n${(await p.content().catch(() => '')).slice(0, 2000)}\n`);
  }
  throw e;
} finally {
  await browser.close();
}
