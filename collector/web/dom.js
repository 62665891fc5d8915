// DOM helpers. Data only ever reaches the page as text nodes and attribute
// values: nothing from the API is parsed as HTML.

// h('td', {class: 'x', data: {sdk: 'A'}, onclick: fn}, 'text', childNode, [more])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'data') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else {
      el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(Number(ms));
  const pad = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(ms, now = Date.now()) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const fmtCount = n => Number(n || 0).toLocaleString('en-US');

// Colour class of a finding: violation red, vague amber, observation blue,
// clear green; "declared" for a declaration nothing was observed against.
export function tone(finding, verdict) {
  if (finding === 'violation') return verdict === 'vague' ? 'vague' : 'violation';
  if (finding === 'observation') return 'observation';
  if (finding === 'clear') return 'clear';
  return 'declared';
}

export function badge(finding, verdict, text) {
  return h('span', {class: `badge t-${tone(finding, verdict)}`}, text ?? verdict ?? finding);
}

export const baseName = p => (p || '').split('/').pop();
export const sdkLabel = sdk => sdk || '(no SDK)';

export function empty(text) { return h('div', {class: 'empty'}, text); }

export function pager(page, onPage) {
  const from = page.offset + 1;
  const to = page.offset + page.count;
  return h('div', {class: 'pager'},
    h('button', {type: 'button', class: 'prev', disabled: page.offset === 0,
                 onclick: () => onPage(Math.max(0, page.offset - page.limit))}, '‹ Previous'),
    h('span', {class: 'range'}, page.count ? `${fmtCount(from)}–${fmtCount(to)}` : 'none'),
    h('button', {type: 'button', class: 'next', disabled: page.next_offset === null,
                 onclick: () => onPage(page.next_offset)}, 'Next ›'));
}
