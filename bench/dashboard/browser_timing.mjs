// The dashboard's three views timed in Debian's chromium (playwright-core
// from tests/web/node_modules): from the navigation click until the view is
// rendered (its data fetched and its DOM built). Prints a Markdown table.
//
//   node browser_timing.mjs --url http://127.0.0.1:PORT --token T [--runs 20] [--sdk SDK]
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';

const require = createRequire(fileURLToPath(new URL('../../tests/web/package.json', import.meta.url)));
const {chromium} = require('playwright-core');

const {values: args} = parseArgs({options: {
  url: {type: 'string'}, token: {type: 'string'}, runs: {type: 'string', default: '20'},
  sdk: {type: 'string', default: 'Lebo SDK'},
}});
const runs = Number(args.runs);
const browser = await chromium.launch({executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync']});
const page = await browser.newPage({viewport: {width: 1440, height: 900}});
page.setDefaultTimeout(60000);
await page.goto(`${args.url}/#token=${encodeURIComponent(args.token)}`);
await page.waitForSelector('main[data-view="overview"]:not([aria-busy]) .cards');

// Times one view two ways: in the page (navigation to the first frame showing
// the view: its API calls, building the DOM, layout; app.js records it in
// main[data-render-ms]) and from outside (playwright's click until the view
// is found rendered, adding the driver's own round trips).
const stats = ms => {
  ms.sort((a, b) => a - b);
  return {p50: ms[Math.floor(ms.length / 2)], p99: ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))], max: ms.at(-1)};
};
async function time(view, selector, go) {
  const inPage = [], outside = [];
  for (let i = 0; i < runs + 1; i++) {
    await page.click('#nav a[data-view="policies"]');
    await page.waitForSelector('main[data-view="policies"][data-render-ms]');
    const t0 = Date.now();
    await go();
    await page.waitForSelector(`main[data-view="${view}"][data-render-ms] ${selector}`);
    const took = Date.now() - t0;
    if (i === 0) continue;  // warm-up
    outside.push(took);
    inPage.push(Number(await page.getAttribute('main', 'data-render-ms')));
  }
  return {inPage: stats(inPage), outside: stats(outside)};
}

const q = new URLSearchParams({view: 'violations', sdk: args.sdk});
const rows = [
  ['overview', await time('overview', '.cards', () => page.click('#nav a[data-view="overview"]'))],
  ['matrix', await time('matrix', '#matrix', () => page.click('#nav a[data-view="matrix"]'))],
  [`violations filtered by SDK (${args.sdk})`, await time('violations', '#verdicts',
    () => page.evaluate(s => { history.pushState(null, '', '?' + s); dispatchEvent(new PopStateEvent('popstate')); }, q.toString()))],
];
console.log(`\n| view in chromium (${runs} runs) | in page p50 / p99 ms | click to rendered (playwright) p50 / p99 ms | target 300 ms (in page p99) |\n|---|---|---|---|`);
for (const [name, t] of rows) {
  console.log(`| ${name} | ${t.inPage.p50} / ${t.inPage.p99} | ${t.outside.p50} / ${t.outside.p99} | ${t.inPage.p99 <= 300 ? 'met' : 'missed'} |`);
}
await browser.close();
