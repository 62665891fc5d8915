// Devices: every agent with its health, and per device a timeline of events
// with the usage-context changes between them (scenario, consent).
import {get} from './api.js';
import {badge, empty, fmtAgo, fmtCount, fmtTime, h, pager, sdkLabel} from './dom.js';

const PAGE = 50;

export async function render(ctx, name) {
  return name === 'device' ? deviceView(ctx) : listView(ctx);
}

async function listView(ctx) {
  const r = await get('/api/devices', {limit: PAGE, offset: ctx.params.get('offset') || 0});
  const body = r.devices.length ? h('table', {class: 'list', id: 'devices'},
    h('thead', {}, h('tr', {}, ['device', 'class', 'firmware', 'agent', 'status', 'last active',
      'events', 'gaps', 'lost'].map(t => h('th', {}, t)))),
    h('tbody', {}, r.devices.map(d => h('tr', {class: 'link', data: {device: d.device},
        onclick: () => ctx.go({view: 'device', device: d.device})},
      h('td', {}, d.device), h('td', {}, d.device_class), h('td', {}, d.firmware), h('td', {}, d.agent_id),
      h('td', {}, status(d)), h('td', {}, fmtAgo(d.last_active_unix_ms)),
      h('td', {class: 'num'}, fmtCount(d.events_stored)), h('td', {class: 'num'}, fmtCount(d.gap_events)),
      h('td', {class: 'num' + (d.drops.total ? ' lost' : '')}, fmtCount(d.drops.total)))))) :
    empty('No agent has connected yet.');
  return h('section', {class: 'view'}, h('h1', {}, 'Devices'), body,
    pager({...r, count: r.devices.length}, offset => ctx.update({offset})));
}

const status = d => h('span', {class: `badge t-${d.status === 'silent' ? 'vague' : 'clear'}`}, d.status);

async function deviceView(ctx) {
  const device = ctx.params.get('device') || '';
  const r = await get(`/api/devices/${encodeURIComponent(device)}/timeline`,
    {limit: PAGE, offset: ctx.params.get('offset') || 0});
  const health = r.agents.map(a => {
    const facts = [
      ['class', a.device_class], ['firmware', a.firmware || '–'], ['agent version', a.agent_version],
      ['last hello', fmtTime(a.last_seen_unix_ms)], ['last active', fmtAgo(a.last_active_unix_ms)],
      ['stored up to seq', fmtCount(a.stored_up_to)], ['events stored', fmtCount(a.events_stored)],
      ['declared gaps', fmtCount(a.gap_events)],
      ...Object.entries(a.drops).filter(([k]) => k !== 'total')
        .map(([k, v]) => ['lost: ' + k.replace('_', ' '), fmtCount(v)])];
    return h('div', {class: 'panel health'},
      h('h2', {}, 'Agent ', h('code', {}, a.agent_id), ' ', status(a)),
      h('dl', {class: 'inline'}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  });
  const items = r.events.map(e => {
    const li = h('li', {class: `ev f-${e.finding}`},
      h('time', {}, fmtTime(e.time_unix_ms)), ' ', badge(e.finding, e.verdict), ' ',
      h('strong', {}, sdkLabel(e.sdk)), ` ${e.action} `, h('strong', {}, e.cookie ? `cookie ${e.cookie}` : e.data_type),
      e.destination ? [' → ', h('code', {}, e.destination)] : '', e.count > 1 ? ` ×${fmtCount(e.count)}` : '',
      h('span', {class: 'muted'}, ` seq ${e.seq}`));
    if (!e.context_change) return li;
    const c = e.context_change;
    const parts = [];
    if (JSON.stringify(c.scenarios_before) !== JSON.stringify(c.scenarios_after)) {
      parts.push(`scenario ${c.scenarios_before.join(', ') || 'none'} → ${c.scenarios_after.join(', ') || 'none'}`);
    }
    for (const k of c.consents) parts.push(`consent ${k.consent}: ${k.before ?? 'unset'} → ${k.after ?? 'unset'}`);
    return [li, h('li', {class: 'ctx'}, 'context changed: ', parts.join('; '))];
  });
  return h('section', {class: 'view'},
    h('div', {class: 'title'}, h('h1', {}, 'Device ', h('code', {}, device)),
      h('a', {href: '?' + new URLSearchParams({view: 'violations', device, finding: 'any'})}, 'its verdicts ›')),
    health.length ? health : h('p', {class: 'muted'}, 'No agent row for this device.'),
    h('div', {class: 'panel'}, h('h2', {}, 'Timeline (newest first)'),
      items.length ? h('ol', {class: 'timeline', id: 'timeline'}, items.flat()) : empty('No event in range.'),
      pager({...r, count: r.events.length}, offset => ctx.update({offset}))));
}
