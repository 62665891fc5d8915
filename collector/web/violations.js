// The violation list: every filter of the API, kept in the URL, paginated;
// a row opens its evidence and links to its statement entry.
import {get} from './api.js';
import {badge, empty, fmtCount, fmtTime, h, pager, sdkLabel} from './dom.js';
import {entryLink, evidence, openDrawer} from './evidence.js';

const TEXT = ['device', 'device_class', 'firmware', 'sdk', 'data_type'];
const PAGE = 50;

// datetime-local <-> unix ms (local time).
const toLocal = ms => {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocal = v => (v ? String(new Date(v).getTime()) : '');

export async function render(ctx) {
  const p = ctx.params;
  const finding = p.get('finding') || 'violation';
  const q = {limit: PAGE, offset: p.get('offset') || 0, verdict: p.get('verdict'),
             since: p.get('since'), until: p.get('until')};
  for (const k of TEXT) q[k] = p.get(k);
  if (finding !== 'any') q.finding = finding;
  const r = await get('/api/verdicts', q);
  const list = r.verdicts;
  const table = list.length ? h('table', {class: 'list', id: 'verdicts'},
    h('thead', {}, h('tr', {}, ['verdict', 'device', 'SDK', 'data type', 'destination', 'encoding',
      'count', 'last seen', 'statement entry', 'explanation'].map(t => h('th', {}, t)))),
    h('tbody', {}, list.map(g => h('tr', {class: `link f-${g.finding}`,
        data: {sdk: g.sdk, type: g.data_type, verdict: g.verdict, device: g.device},
        onclick: e => { if (!e.target.closest('a')) openDrawer(evidence(g)); }},
      h('td', {}, badge(g.finding, g.verdict)), h('td', {}, g.device), h('td', {}, sdkLabel(g.sdk)),
      h('td', {}, g.cookie ? `cookie ${g.cookie}` : g.data_type), h('td', {}, h('code', {}, g.destination || '–')),
      h('td', {}, g.cookie_direction || g.encoding), h('td', {class: 'num'}, fmtCount(g.count)),
      h('td', {class: 'nowrap'}, fmtTime(g.last_seen_unix_ms)), h('td', {}, entryLink(g, true)),
      h('td', {class: 'expl'}, g.explanation))))) : empty('No verdict group matches these filters.');
  const page = {offset: r.offset, limit: r.limit, next_offset: r.next_offset, count: list.length};
  return h('section', {class: 'view'},
    h('div', {class: 'title'}, h('h1', {}, 'Violations'),
      h('span', {class: 'muted', id: 'list-status'}, `${list.length} verdict groups on this page`)),
    filterForm(ctx, finding), table,
    pager(page, offset => ctx.update({offset}, {push: true})));
}

function filterForm(ctx, finding) {
  const p = ctx.params;
  const cats = ctx.policies.categories || [];
  const form = h('form', {class: 'filters', id: 'filters', onsubmit: e => {
    e.preventDefault();
    const f = new FormData(form);
    const next = {view: 'violations'};
    for (const k of TEXT) next[k] = f.get(k).trim();
    next.verdict = f.get('verdict');
    next.finding = f.get('finding') === 'violation' ? '' : f.get('finding');
    next.since = fromLocal(f.get('since'));
    next.until = fromLocal(f.get('until'));
    ctx.go(next);
  }},
  TEXT.map(k => h('label', {}, h('span', {}, k.replace('_', ' ')),
    h('input', {name: k, value: p.get(k) || '', list: k === 'sdk' ? 'sdk-list' : undefined}))),
  h('datalist', {id: 'sdk-list'}, [...new Set((ctx.policies.bindings || []).map(b => b.sdk))].sort().map(s => h('option', {value: s}))),
  h('label', {}, h('span', {}, 'verdict'), h('select', {name: 'verdict'},
    h('option', {value: ''}, 'any verdict'),
    cats.map(c => h('option', {value: c.name, selected: p.get('verdict') === c.name, title: c.meaning}, c.name)))),
  h('label', {}, h('span', {}, 'finding'), h('select', {name: 'finding'},
    [['violation', 'violations'], ['observation', 'observations'], ['clear', 'clear'], ['any', 'everything']]
      .map(([v, t]) => h('option', {value: v, selected: finding === v}, t)))),
  h('label', {}, h('span', {}, 'since'), h('input', {type: 'datetime-local', name: 'since', value: toLocal(p.get('since'))})),
  h('label', {}, h('span', {}, 'until'), h('input', {type: 'datetime-local', name: 'until', value: toLocal(p.get('until'))})),
  h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply'),
    h('button', {type: 'button', class: 'ghost', onclick: () => ctx.go({view: 'violations'})}, 'Reset')));
  return form;
}
