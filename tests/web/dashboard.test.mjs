// The dashboard in a real browser: Debian's chromium driven by playwright-core
// against a collector seeded with scenario data (tests/web/dashboard_browser_test.cc
// starts it). Exit 0 when every check passed, 1 otherwise (the first failure
// on stderr), 2 on bad usage. Screenshots go to --out.
//
//   node dashboard.test.mjs --url http://127.0.0.1:PORT --token TOKEN --out DIR
//       [--cell "SDK|data_type|tone"]... [--filter-sdk SDK]
//       [--live-type TYPE --live-verdict VERDICT]
//
// The live check prints "LIVE-READY" on stdout once the page is open on the
// violation list; the caller then makes a new violation, which must appear
// without a reload.
import {mkdirSync} from 'node:fs';
import {join} from 'node:path';
import {parseArgs} from 'node:util';

import {chromium} from 'playwright-core';

const {values: args} = parseArgs({
  options: {
    url: {type: 'string'},
    token: {type: 'string'},
    out: {type: 'string', default: '.'},
    cell: {type: 'string', multiple: true, default: []},
    'filter-sdk': {type: 'string'},
    'live-type': {type: 'string'},
    'live-verdict': {type: 'string'},
    chromium: {type: 'string', default: '/usr/bin/chromium'},
    'timeout-ms': {type: 'string', default: '20000'},
  },
});
if (!args.url || !args.token) {
  console.error('usage: dashboard.test.mjs --url URL --token TOKEN [--out DIR] ...');
  process.exit(2);
}
const TIMEOUT = Number(args['timeout-ms']);
mkdirSync(args.out, {recursive: true});

class CheckFailed extends Error {}
function check(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

let page;
let passed = 0;
const pageErrors = [];
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    console.error(`not ok - ${name}: ${e.message}`);
    if (pageErrors.length) console.error('page errors:\n' + pageErrors.join('\n'));
    if (page) console.error(`at ${page.url()}: ${(await page.textContent('main').catch(() => '')).slice(0, 300)}`);
    if (page) await page.screenshot({path: join(args.out, 'failure.png'), fullPage: true}).catch(() => {});
    throw e;
  }
}
const shot = name => page.screenshot({path: join(args.out, `${name}.png`), fullPage: true});
// fetch from inside the page, with or without the token.
const fetchStatus = (path, token) => page.evaluate(async ([p, t]) => {
  const r = await fetch(p, {headers: t ? {Authorization: 'Bearer ' + t} : {}});
  return {status: r.status, body: await r.text()};
}, [path, token || '']);
const nav = async view => {
  await page.click(`#nav a[data-view="${view}"]`);
  await page.waitForSelector(`main[data-view="${view}"]:not([aria-busy])`, {timeout: TIMEOUT});
};

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let exitCode = 0;
try {
  const context = await browser.newContext({viewport: {width: 1440, height: 900}});
  page = await context.newPage();
  page.on('pageerror', e => pageErrors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.setDefaultTimeout(TIMEOUT);
  const base = args.url.replace(/\/$/, '');

  await step('without the token the page shows the gate and the API refuses data', async () => {
    await page.goto(base + '/');
    await page.waitForSelector('#gate:not([hidden])');
    check((await page.textContent('main')).trim() === '', 'data rendered without a token');
    for (const p of ['/api/verdicts', '/api/overview', '/api/matrix', '/api/devices', '/api/policies', '/api/changes']) {
      const r = await fetchStatus(p);
      check(r.status === 401, `${p} without token answered ${r.status}`);
      check(!r.body.includes('"verdicts"') && !r.body.includes('"cells"'), `${p} leaked data: ${r.body.slice(0, 80)}`);
    }
    check((await fetchStatus('/api/verdicts', 'wrong-' + args.token)).status === 401, 'a wrong token was accepted');
    await shot('locked');
  });

  await step('with the token the overview loads and the token leaves the address bar', async () => {
    await page.goto(`${base}/#token=${encodeURIComponent(args.token)}`);
    await page.waitForSelector('main[data-view="overview"] .cards');
    check(!page.url().includes('token'), `token still in the URL: ${page.url()}`);
    const v = await page.textContent('[data-card="violations"] b');
    check(Number(v.replace(/,/g, '')) > 0, `no violation counted on the overview: ${v}`);
    check(await page.$('svg.chart rect') !== null, 'the violations chart has no bar');
    check((await page.textContent('#gaps-status')).includes('events reported lost'), 'no data gaps line');
    await shot('overview');
  });

  await step('bad parameters are refused with a clear message', async () => {
    const r = await fetchStatus('/api/verdicts?limit=0', args.token);
    check(r.status === 400 && r.body.includes('limit'), `limit=0: ${r.status} ${r.body}`);
    const u = await fetchStatus('/api/verdicts?sdkk=x', args.token);
    check(u.status === 400 && u.body.includes('sdkk'), `unknown parameter: ${u.status} ${u.body}`);
    const v = await fetchStatus('/api/verdicts?verdict=nonsense', args.token);
    check(v.status === 400, `unknown verdict: ${v.status}`);
  });

  await step('the matrix shows the expected cells', async () => {
    await nav('matrix');
    await page.waitForSelector('#matrix');
    for (const spec of args.cell) {
      const [sdk, type, tone] = spec.split('|');
      const sel = `td.cell[data-sdk="${sdk}"][data-type="${type}"]`;
      const cls = await page.getAttribute(sel, 'class', {timeout: 2000}).catch(() => null);
      check(cls !== null, `no matrix cell ${sdk} × ${type}`);
      check(cls.split(' ').includes(`t-${tone}`), `cell ${sdk} × ${type} is "${cls}", expected t-${tone}`);
    }
    await shot('matrix');
  });

  await step('a matrix cell opens its evidence', async () => {
    const [sdk, type] = (args.cell.find(c => c.endsWith('|violation')) || args.cell[0]).split('|');
    await page.click(`td.cell[data-sdk="${sdk}"][data-type="${type}"] button`);
    await page.waitForSelector('#drawer:not([hidden]) .evidence');
    const text = await page.textContent('#drawer');
    for (const word of ['Call chain', 'destination', 'snippet', 'first seen', 'last seen', type]) {
      check(text.includes(word), `evidence lacks "${word}"`);
    }
    await shot('matrix-evidence');
    await page.click('#drawer-close');
  });

  let allRows = 0;
  await step('filters narrow the violation list and are kept in the URL', async () => {
    await nav('violations');
    await page.waitForSelector('#verdicts tbody tr');
    allRows = await page.locator('#verdicts tbody tr').count();
    const sdk = args['filter-sdk'];
    check(sdk, '--filter-sdk is required');
    await page.fill('#filters input[name="sdk"]', sdk);
    await Promise.all([
      page.waitForURL(u => new URL(u).searchParams.get('sdk') === sdk),
      page.click('#filters button[type="submit"]'),
    ]);
    await page.waitForSelector('main[data-view="violations"]:not([aria-busy])');
    const sdks = await page.$$eval('#verdicts tbody tr', rows => rows.map(r => r.dataset.sdk));
    check(sdks.length > 0, `no row for SDK ${sdk}`);
    check(sdks.length < allRows, `the filter did not narrow the list (${sdks.length} of ${allRows})`);
    check(sdks.every(s => s === sdk), `rows of other SDKs: ${sdks.join(', ')}`);
    // The shared URL gives the same view.
    await page.goto(page.url());
    await page.waitForSelector('#verdicts tbody tr');
    check(await page.locator('#verdicts tbody tr').count() === sdks.length, 'the URL did not restore the filter');
    check(await page.inputValue('#filters input[name="sdk"]') === sdk, 'the filter field was not restored');
  });

  await step('a violation shows its evidence and links to its statement entry', async () => {
    await page.click('#verdicts tbody tr:first-child td.expl');
    await page.waitForSelector('#drawer:not([hidden]) .evidence');
    const text = await page.textContent('#drawer .evidence');
    for (const word of ['statement entry', 'module', 'destination', 'encoding', 'snippet', 'count', 'first seen', 'last seen', 'Call chain']) {
      check(text.includes(word), `evidence lacks "${word}"`);
    }
    await shot('violation-evidence');
    const link = await page.$('#drawer a.entry-link');
    if (link) {
      const href = await link.getAttribute('href');
      check(href.includes('view=policies') && href.includes('statement='), `entry link: ${href}`);
      await link.click();
      await page.waitForSelector('main[data-view="policies"]');
      const entry = new URL(page.url()).searchParams.get('entry');
      if (entry) check(await page.$('tr.target') !== null, `entry ${entry} not highlighted`);
      check(await page.isHidden('#drawer'), 'the drawer stayed open');
    } else {
      await page.click('#drawer-close');
    }
  });

  await step('devices list and a device timeline with agent health', async () => {
    await nav('devices');
    await page.waitForSelector('#devices tbody tr');
    await page.click('#devices tbody tr:first-child');
    await page.waitForSelector('main[data-view="device"] #timeline li.ev');
    check((await page.textContent('main')).includes('stored up to seq'), 'no agent health');
    // The scenario runs switch scenario and consent between SDKs.
    check(await page.locator('#timeline li.ctx').count() > 0, 'no context change on the timeline');
    await shot('device');
  });

  await step('policies: statements, cookie tables and a diff', async () => {
    await nav('policies');
    check(await page.locator('main tr[id^="entry-"]').count() > 0, 'no statement entry listed');
    check((await page.textContent('main')).includes('Cookie tables'), 'no cookie tables');
    await page.selectOption('#diff-pair', 'disk');
    await page.click('#diff-run');
    await page.waitForFunction(() => !document.querySelector('#diff-out').textContent.includes('comparing'));
    const out = await page.textContent('#diff-out');
    check(out.includes('No difference'), `loaded policy differs from disk: ${out.slice(0, 200)}`);
    await shot('policies');
  });

  if (args['live-type']) {
    await step('a new violation appears without reloading', async () => {
      const type = args['live-type'], verdict = args['live-verdict'];
      await nav('violations');
      await page.waitForSelector('#verdicts tbody tr');
      const sel = `#verdicts tbody tr[data-type="${type}"][data-verdict="${verdict}"]`;
      check(await page.$(sel) === null, `a ${verdict} ${type} row is there before the run`);
      await page.evaluate(() => { window.__idflowSamePage = true; });
      console.log('LIVE-READY');
      await page.waitForSelector(sel, {timeout: 45000});
      check(await page.evaluate(() => window.__idflowSamePage === true), 'the page was reloaded');
      check(Number(await page.evaluate(() => document.body.dataset.liveUpdates)) >= 1, 'no live update counted');
      await shot('live');
    });
  }

  await step('no script error on the page', async () => {
    // The 401s and 400s asked for above are logged by chromium as failed loads.
    const errors = pageErrors.filter(e => !/Failed to load resource.*\b40[01]\b/.test(e));
    check(errors.length === 0, errors.join('\n'));
  });
  console.log(`${passed} checks passed`);
} catch (e) {
  if (!(e instanceof CheckFailed)) console.error(e);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
