// Policies: the imported statements (entries with their declared data types),
// the cookie tables, the bindings, and the diff between statement versions
// or against the policy files on disk.
import {get} from './api.js';
import {empty, h} from './dom.js';

export async function render(ctx) {
  const pol = ctx.policies;
  const want = {statement: ctx.params.get('statement'), version: ctx.params.get('version'), entry: ctx.params.get('entry')};
  const statements = pol.statements.map(s => h('div', {class: 'panel', id: `st-${s.id}-${s.version}`},
    h('h2', {}, s.title || s.id, ' ', h('span', {class: 'muted'}, `${s.id} ${s.version}`)),
    h('p', {class: 'muted'}, s.source ? `source: ${s.source} · ` : '', `file: ${s.file}`),
    h('table', {class: 'compact'},
      h('thead', {}, h('tr', {}, ['entry', 'SDK', 'third party', 'declared data types', 'scenarios', 'consent', 'purpose'].map(t => h('th', {}, t)))),
      h('tbody', {}, s.entries.map(e => h('tr', {id: `entry-${e.id}`,
          class: want.statement === s.id && (!want.version || want.version === s.version) && want.entry === e.id ? 'target' : ''},
        h('td', {}, h('code', {}, e.id), h('div', {class: 'muted'}, e.title)), h('td', {}, e.sdk), h('td', {}, e.third_party),
        h('td', {}, e.data_types.map(d => h('span', {class: 'chip'}, d)),
          e.unmapped.length ? h('div', {class: 'muted'}, 'unmapped: ' + e.unmapped.join('; ')) : ''),
        h('td', {}, e.scenarios.join(', ')), h('td', {}, e.requires_consent.join(', ')),
        h('td', {class: 'expl'}, e.purpose)))))));
  const cookies = pol.cookie_policies.map(c => h('div', {class: 'panel'},
    h('h2', {}, c.title || c.id, ' ', h('span', {class: 'muted'}, `${c.id} ${c.version}`)),
    h('p', {class: 'muted'}, `sites: ${c.sites.join(', ')}`, c.first_party_only ? ' · first-party cookies only' : ''),
    h('table', {class: 'compact'},
      h('thead', {}, h('tr', {}, ['cookie', 'category', 'duration', 'party', 'purpose'].map(t => h('th', {}, t)))),
      h('tbody', {}, c.cookies.map(r => h('tr', {},
        h('td', {}, h('code', {}, r.name)), h('td', {}, r.category), h('td', {}, r.session ? 'session' : r.duration),
        h('td', {}, r.first_party ? 'first' : 'third'), h('td', {class: 'expl'}, r.purpose)))))));
  const node = h('section', {class: 'view policies'},
    h('h1', {}, 'Policies'),
    diffPanel(ctx),
    h('h2', {class: 'section'}, 'Statements'), statements.length ? statements : empty('No statement loaded.'),
    h('h2', {class: 'section'}, 'Cookie tables'), cookies.length ? cookies : empty('No cookie policy loaded.'),
    h('h2', {class: 'section'}, 'Bindings'),
    h('div', {class: 'panel'}, h('table', {class: 'compact'},
      h('thead', {}, h('tr', {}, h('th', {}, 'SDK'), h('th', {}, 'modules'), h('th', {}, 'file'))),
      h('tbody', {}, pol.bindings.map(b => h('tr', {}, h('td', {}, b.sdk),
        h('td', {}, b.modules.map(m => h('code', {class: 'chip'}, m))), h('td', {class: 'muted'}, `${b.file}:${b.line}`)))))));
  if (want.entry) queueMicrotask(() => document.getElementById(`entry-${want.entry}`)?.scrollIntoView({block: 'center'}));
  return node;
}

function diffPanel(ctx) {
  const versions = new Map();
  for (const s of ctx.policies.statements) versions.set(s.id, [...(versions.get(s.id) || []), s.version]);
  const out = h('div', {id: 'diff-out'});
  const sel = h('select', {name: 'pair', id: 'diff-pair'},
    [...versions].flatMap(([id, vs]) => vs.flatMap(a => vs.filter(b => b !== a).map(b =>
      h('option', {value: JSON.stringify([id, a, b])}, `${id}: ${a} → ${b}`)))),
    h('option', {value: 'disk'}, 'loaded policy → files on disk now'));
  const run = async () => {
    out.replaceChildren(h('p', {class: 'muted'}, 'comparing…'));
    try {
      const v = sel.value;
      const d = v === 'disk' ? await get('/api/policies/diff', {against: 'disk'})
        : await (([statement, from, to]) => get('/api/policies/diff', {statement, from, to}))(JSON.parse(v));
      out.replaceChildren(renderDiff(d));
    } catch (e) {
      out.replaceChildren(h('div', {class: 'error'}, e.message));
    }
  };
  return h('div', {class: 'panel'}, h('h2', {}, 'What changed between versions'),
    h('form', {class: 'filters', onsubmit: e => { e.preventDefault(); run(); }}, sel, h('button', {type: 'submit', id: 'diff-run'}, 'Compare')),
    out);
}

const OPS = {added: '+', removed: '−', changed: '~'};
function renderDiff(d) {
  if (d.identical) return empty('No difference.');
  const groups = (d.groups || []).map(g => h('div', {class: 'diff-group'},
    h('h4', {}, `${g.section}${g.name ? ': ' + g.name : ''}`, g.status && g.status !== 'changed' ? ` (${g.status})` : ''),
    h('ul', {}, (g.changes || []).map(c => h('li', {class: `op-${c.op}`},
      h('b', {}, OPS[c.op] || c.op), ' ', c.kind ? `${c.kind} ` : '', h('code', {}, c.id || ''), c.detail ? ` ${c.detail}` : '',
      c.field ? [' ', h('em', {}, c.field), ': ', JSON.stringify(c.before ?? []), ' → ', JSON.stringify(c.after ?? [])] : '')))));
  const verdicts = (d.verdicts || []).map(v => h('li', {},
    `${v.sdk} · ${v.data_type}: ${v.before?.category ?? JSON.stringify(v.before)} → ${v.after?.category ?? JSON.stringify(v.after)}`));
  return h('div', {}, groups, verdicts.length ? [h('h4', {}, 'Verdicts that change'), h('ul', {}, verdicts)] : '');
}
