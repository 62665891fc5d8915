// Overview: findings over time by SDK, violations by SDK and category,
// devices reporting and silent, and the data gaps (what agents lost).
import {get} from './api.js';
import {badge, fmtAgo, fmtCount, h, s, sdkLabel} from './dom.js';

const RANGES = {'24h': [24 * 3600e3, 3600e3], '7d': [7 * 86400e3, 6 * 3600e3], '30d': [30 * 86400e3, 86400e3]};
const PALETTE = ['#c0392b', '#8e44ad', '#d35400', '#2c3e50', '#16a085', '#7f6000', '#1f618d',
                 '#b03a2e', '#6c3483', '#117864', '#9a7d0a', '#515a5a'];

export async function render(ctx) {
  const range = RANGES[ctx.params.get('range')] ? ctx.params.get('range') : '24h';
  const [span, bucket] = RANGES[range];
  const now = Date.now();
  const since = Math.floor((now - span) / bucket) * bucket;
  const [o, devs] = await Promise.all([
    get('/api/overview', {since, bucket_ms: bucket}),
    get('/api/devices', {limit: 200}),
  ]);
  const t = o.totals;
  const lost = o.gaps.lost.total + o.gaps.gap_events;
  const cards = h('div', {class: 'cards'},
    card('violations', t.violation, 't-violation', 'events judged a violation'),
    card('observations', t.observation, 't-observation', 'shown, never failing a run'),
    card('clear', t.clear, 't-clear', 'as declared'),
    card('devices reporting', o.devices.reporting, 't-clear', `of ${o.devices.total}`),
    card('devices silent', o.devices.silent, o.devices.silent ? 't-vague' : '', `nothing for ${Math.round(o.devices.silent_after_ms / 60000)} min`),
    card('events lost', lost, lost ? 't-violation' : 't-clear', `${o.gaps.agents_with_losses} agents with losses`));
  const rangeSel = h('div', {class: 'seg', role: 'group', 'aria-label': 'time range'},
    Object.keys(RANGES).map(r => h('button', {type: 'button', class: r === range ? 'on' : '',
      onclick: () => ctx.update({range: r}, {push: false})}, r)));
  return h('section', {class: 'view overview'},
    h('div', {class: 'title'}, h('h1', {}, 'Overview'), rangeSel),
    cards,
    h('div', {class: 'grid2'},
      h('div', {class: 'panel'}, h('h2', {}, 'Violations over time, by SDK'), chart(o, since, now, bucket)),
      h('div', {class: 'panel'}, h('h2', {}, 'Violations by SDK and category'), categoryTable(ctx, o))),
    h('div', {class: 'panel'}, h('h2', {}, 'Data gaps'),
      h('p', {class: 'muted', id: 'gaps-status'},
        `${fmtCount(devs.devices.length)} agents, ${fmtCount(lost)} events reported lost` +
        (lost ? ': the verdicts shown do not cover them' : '')),
      gapsTable(ctx, devs.devices)));
}

function card(label, n, cls, sub) {
  return h('div', {class: `card ${cls}`, data: {card: label}},
    h('b', {}, fmtCount(n)), h('span', {}, label), h('small', {}, sub));
}

function chart(o, since, now, bucket) {
  const rows = o.buckets.filter(b => b.finding === 'violation');
  if (!rows.length) return h('div', {class: 'empty'}, 'No violation in this range.');
  const sdks = [...new Set(rows.map(r => r.sdk))].sort();
  const colour = sdk => PALETTE[sdks.indexOf(sdk) % PALETTE.length];
  const n = Math.max(1, Math.ceil((now - since) / bucket));
  const stacks = Array.from({length: n}, () => new Map());
  for (const r of rows) {
    const i = Math.min(n - 1, Math.max(0, Math.floor((r.start_unix_ms - since) / bucket)));
    stacks[i].set(r.sdk, (stacks[i].get(r.sdk) || 0) + r.count);
  }
  const max = Math.max(1, ...stacks.map(m => [...m.values()].reduce((a, b) => a + b, 0)));
  const W = 720, H = 200, pad = 28, bw = (W - pad) / n;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H + 22}`, class: 'chart', role: 'img', 'aria-label': 'violations per time bucket, stacked by SDK'});
  svg.append(s('line', {x1: pad, y1: H, x2: W, y2: H, class: 'axis'}));
  svg.append(s('text', {x: 0, y: 12, class: 'tick'}, fmtCount(max)));
  stacks.forEach((m, i) => {
    let y = H;
    for (const sdk of sdks) {
      const v = m.get(sdk);
      if (!v) continue;
      const bh = Math.max(1, (v / max) * (H - 16));
      y -= bh;
      svg.append(s('rect', {x: pad + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, fill: colour(sdk)},
        s('title', {}, `${sdkLabel(sdk)}: ${fmtCount(v)} at ${new Date(since + i * bucket).toLocaleString()}`)));
    }
  });
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    const d = new Date(since + i * bucket);
    svg.append(s('text', {x: pad + i * bw, y: H + 16, class: 'tick', 'text-anchor': i === n - 1 && n > 1 ? 'end' : 'start'},
      bucket < 86400e3 ? `${d.getMonth() + 1}/${d.getDate()} ${d.getHours()}:00` : `${d.getMonth() + 1}/${d.getDate()}`));
  }
  const legend = h('ul', {class: 'legend'}, sdks.map(sdk =>
    h('li', {}, swatch(colour(sdk)), sdkLabel(sdk))));
  return h('div', {}, svg, legend);
}

// Through the CSSOM: the page's policy forbids inline style attributes.
function swatch(colour) {
  const el = h('span', {class: 'swatch'});
  el.style.background = colour;
  return el;
}

function categoryTable(ctx, o) {
  const rows = o.by_sdk_verdict.filter(r => r.finding !== 'clear')
    .sort((a, b) => (b.finding === 'violation') - (a.finding === 'violation') || b.count - a.count);
  if (!rows.length) return h('div', {class: 'empty'}, 'Nothing but clear flows in this range.');
  return h('table', {class: 'compact'},
    h('thead', {}, h('tr', {}, h('th', {}, 'SDK'), h('th', {}, 'category'), h('th', {class: 'num'}, 'events'))),
    h('tbody', {}, rows.map(r => h('tr', {class: 'link', onclick: () =>
        ctx.go({view: 'violations', sdk: r.sdk, verdict: r.verdict, finding: r.finding})},
      h('td', {}, sdkLabel(r.sdk)), h('td', {}, badge(r.finding, r.verdict)), h('td', {class: 'num'}, fmtCount(r.count))))));
}

function gapsTable(ctx, devices) {
  if (!devices.length) return h('div', {class: 'empty'}, 'No agent has connected yet.');
  const causes = ['tap', 'ingress', 'spool', 'disk', 'dead_letter'];
  return h('table', {class: 'compact'},
    h('thead', {}, h('tr', {}, ['agent', 'device', 'status', 'last active', 'stored up to', 'events',
      'gaps', ...causes.map(c => 'lost: ' + c.replace('_', ' '))].map(t => h('th', {}, t)))),
    h('tbody', {}, devices.map(d => h('tr', {class: 'link', onclick: () => ctx.go({view: 'device', device: d.device})},
      h('td', {}, d.agent_id), h('td', {}, d.device),
      h('td', {}, h('span', {class: `badge t-${d.status === 'silent' ? 'vague' : 'clear'}`}, d.status)),
      h('td', {}, fmtAgo(d.last_active_unix_ms)), h('td', {class: 'num'}, fmtCount(d.stored_up_to)),
      h('td', {class: 'num'}, fmtCount(d.events_stored)),
      h('td', {class: 'num' + (d.gap_events ? ' lost' : '')}, fmtCount(d.gap_events)),
      causes.map(c => h('td', {class: 'num' + (d.drops[c] ? ' lost' : '')}, fmtCount(d.drops[c])))))));
}
