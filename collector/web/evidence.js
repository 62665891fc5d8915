// The evidence drawer: one verdict group's proof (who, what, where, how
// encoded, the redacted snippet, counts) and the statement entry it was
// judged against.
import {badge, baseName, fmtCount, fmtTime, h, sdkLabel, tone} from './dom.js';

export function closeDrawer() {
  document.getElementById('drawer').hidden = true;
}

export function openDrawer(...content) {
  const body = document.getElementById('drawer-body');
  body.replaceChildren(...content.flat(Infinity).filter(c => c !== '' && c != null));
  const d = document.getElementById('drawer');
  d.hidden = false;
  d.scrollTop = 0;
}

function row(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

// `short`: the entry id alone (lists), the whole reference in its title.
export function entryLink(g, short = false) {
  if (!g.statement) return h('span', {class: 'muted'}, 'no statement entry applies');
  const q = new URLSearchParams({view: 'policies', statement: g.statement, version: g.statement_version || ''});
  if (g.entry) q.set('entry', g.entry);
  const text = `${g.statement} ${g.statement_version}${g.entry ? ' / ' + g.entry : ''}`;
  const full = text + (g.entry_title ? ` (${g.entry_title})` : '');
  return h('a', {href: '?' + q, class: 'entry-link', title: full}, short ? (g.entry || g.statement) : full);
}

// One group as an evidence card.
export function evidence(g) {
  const chain = (g.call_chain || []).map((m, i) =>
    h('li', {class: m.path === g.module ? 'responsible' : ''},
      h('code', {}, m.path), m.build_id ? h('span', {class: 'muted'}, ` build ${m.build_id.slice(0, 12)}`) : '',
      m.path === g.module ? h('span', {class: 'tag'}, 'responsible') : '', i === 0 ? h('span', {class: 'muted'}, ' (innermost)') : ''));
  const consents = Object.entries(g.consents || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const what = g.cookie ? `cookie ${g.cookie} (${g.cookie_direction})` : g.data_type;
  return h('article', {class: `evidence t-${tone(g.finding, g.verdict)}`},
    h('header', {}, badge(g.finding, g.verdict), ' ', h('strong', {}, sdkLabel(g.sdk)), ' · ',
      g.action || '', ' ', h('strong', {}, what)),
    h('p', {class: 'explanation'}, g.explanation || ''),
    g.verdict_meaning ? h('p', {class: 'muted'}, `${g.verdict}: ${g.verdict_meaning}`) : '',
    h('dl', {},
      row('statement entry', entryLink(g)),
      row('device', g.device, g.device_class ? ` · ${g.device_class}` : '', g.firmware ? ` · fw ${g.firmware}` : ''),
      row('process', baseName(g.exe) || '–', g.pid ? ` (pid ${g.pid})` : ''),
      row('module', h('code', {}, g.module || '–')),
      row('destination', h('code', {}, g.destination || '–'), g.channel ? ` over ${g.channel}` : ''),
      row('encoding', g.encoding || '–', g.instance ? ` · ${g.instance}` : ''),
      row('snippet', g.snippet ? h('code', {class: 'snippet'}, g.snippet) : '–'),
      row('count', fmtCount(g.count)),
      row('first seen', fmtTime(g.first_seen_unix_ms)),
      row('last seen', fmtTime(g.last_seen_unix_ms)),
      row('context', (g.scenarios || []).join(', ') || 'no scenario', consents ? ` · ${consents}` : ''),
      g.run_id ? row('QA run', g.run_id) : ''),
    h('h4', {}, 'Call chain'),
    chain.length ? h('ol', {class: 'chain'}, chain) : h('p', {class: 'muted'}, 'no call chain'));
}
