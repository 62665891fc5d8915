// The SDK × data-type matrix: what each SDK's statement entries declare
// against what was observed, each cell coloured by its worst verdict; a
// click opens the evidence.
import {get} from './api.js';
import {badge, empty, fmtCount, h, sdkLabel, tone} from './dom.js';
import {evidence, openDrawer} from './evidence.js';

const FILTERS = ['device', 'device_class', 'firmware', 'since', 'until'];

export async function render(ctx) {
  const q = {};
  for (const k of FILTERS) q[k] = ctx.params.get(k);
  const m = await get('/api/matrix', q);
  const cells = new Map(m.cells.map(c => [c.sdk + '\u0000' + c.data_type, c]));
  // Observed types first, then the declared-only ones; SDKs with a finding first.
  const rank = {violation: 4, vague: 3, observation: 2, clear: 1, declared: 0};
  const sdkRank = sdk => Math.max(...m.cells.filter(c => c.sdk === sdk).map(c => rank[tone(c.worst_finding, c.worst_verdict)]));
  const sdks = [...m.sdks].sort((a, b) => sdkRank(b) - sdkRank(a) || a.localeCompare(b));
  const observedTypes = new Set(m.cells.filter(c => c.observed).map(c => c.data_type));
  const types = [...m.data_types].sort((a, b) => observedTypes.has(b) - observedTypes.has(a) || a.localeCompare(b));
  const form = filterForm(ctx);
  if (!sdks.length) return h('section', {class: 'view'}, h('h1', {}, 'SDK × data type'), form, empty('Nothing declared or observed.'));
  const table = h('table', {class: 'matrix', id: 'matrix'},
    h('thead', {}, h('tr', {}, h('th', {class: 'corner'}, 'SDK \\ data type'),
      types.map(t => h('th', {class: 'col'}, h('span', {}, t))))),
    h('tbody', {}, sdks.map(sdk => h('tr', {},
      h('th', {scope: 'row'}, sdkLabel(sdk)),
      types.map(t => cell(ctx, cells.get(sdk + '\u0000' + t), sdk, t))))));
  return h('section', {class: 'view'},
    h('div', {class: 'title'}, h('h1', {}, 'SDK × data type'), legend()), form,
    h('div', {class: 'panel scroll'}, table));
}

function cell(ctx, c, sdk, type) {
  if (!c) return h('td', {class: 'cell none'});
  const t = c.observed ? tone(c.worst_finding, c.worst_verdict) : 'declared';
  const label = c.observed ? fmtCount(c.count) : 'declared';
  const title = `${sdkLabel(sdk)} · ${type}: ` + (c.declared ? 'declared' : 'not declared') +
    (c.observed ? `; observed ${c.count} (${c.verdicts.map(v => v.verdict).join(', ')})` : '; not observed');
  return h('td', {class: `cell t-${t}${c.declared ? ' declared' : ''}`,
                  data: {sdk, type, worst: c.observed ? c.worst_verdict : 'declared'}},
    h('button', {type: 'button', title, onclick: () => showCell(ctx, c)},
      label, c.declared && c.observed ? h('i', {class: 'mark', 'aria-label': 'declared'}, '✓') : ''));
}

async function showCell(ctx, c) {
  const head = h('div', {},
    h('h3', {}, `${sdkLabel(c.sdk)} · ${c.data_type}`),
    h('p', {}, c.declared ? 'Declared by ' + c.entries.join('; ') : 'Not declared by any statement entry of this SDK.'),
    c.verdicts.length ? h('p', {}, c.verdicts.map(v => [badge(v.finding, v.verdict, `${v.verdict} ×${fmtCount(v.count)}`), ' '])) : '');
  if (!c.observed) { openDrawer(head, empty('Declared, not observed.')); return; }
  openDrawer(head, h('p', {class: 'muted'}, 'loading evidence…'));
  const q = {data_type: c.data_type, limit: 50};
  for (const k of FILTERS) q[k] = ctx.params.get(k);
  if (c.sdk) q.sdk = c.sdk;
  const r = await get('/api/verdicts', q);
  const groups = r.verdicts.filter(g => g.sdk === c.sdk);
  const more = new URLSearchParams({view: 'violations', data_type: c.data_type, finding: 'any'});
  if (c.sdk) more.set('sdk', c.sdk);
  openDrawer(head, groups.map(evidence),
    r.next_offset !== null ? h('p', {}, h('a', {href: '?' + more}, 'more in the violation list ›')) : '');
}

function legend() {
  return h('div', {class: 'legend-inline'},
    ['violation', 'vague', 'observation', 'clear', 'declared'].map(t => h('span', {class: `badge t-${t}`}, t === 'declared' ? 'declared, not observed' : t)),
    h('span', {class: 'muted'}, '✓ observed and declared by the SDK\'s statement entry'));
}

function filterForm(ctx) {
  const form = h('form', {class: 'filters', onsubmit: e => {
    e.preventDefault();
    const f = new FormData(form);
    const p = {view: 'matrix'};
    for (const k of ['device', 'device_class', 'firmware']) p[k] = f.get(k).trim();
    ctx.go(p);
  }},
  ['device', 'device_class', 'firmware'].map(k => h('input', {name: k, placeholder: k.replace('_', ' '), value: ctx.params.get(k) || ''})),
  h('button', {type: 'submit'}, 'Apply'));
  return form;
}
