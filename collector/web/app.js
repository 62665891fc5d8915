// The dashboard's shell: token gate, views routed by ?view=..., every filter
// kept in the query string (a view can be shared; the token never is), and
// live updates from the collector's change cursor without reloading.
import {ApiError, get, setToken, takeTokenFromUrl} from './api.js';
import {h} from './dom.js';
import {closeDrawer} from './evidence.js';
import * as devices from './devices.js';
import * as matrix from './matrix.js';
import * as overview from './overview.js';
import * as policies from './policies.js';
import * as violations from './violations.js';

const VIEWS = {overview, matrix, violations, devices, device: devices, policies};
const POLL_MS = 2000;

const ctx = {
  params: new URLSearchParams(location.search),
  policies: null,  // /api/policies, loaded once: categories, statements
  // Changes the view's parameters (all of them: `params` replaces the set).
  go(params, {push = true} = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const url = location.pathname + (q.toString() ? '?' + q : '');
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
    ctx.params = q;
    render();
  },
  // Same view, some parameters changed.
  update(changes, opts) {
    const p = Object.fromEntries(ctx.params);
    ctx.go({...p, ...changes}, opts);
  },
};

let renderSeq = 0;
async function render({live = false} = {}) {
  const seq = ++renderSeq;
  const name = ctx.params.get('view') || 'overview';
  const view = VIEWS[name] || overview;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.view === name || (name === 'device' && a.dataset.view === 'devices'));
  }
  const main = document.getElementById('main');
  main.setAttribute('aria-busy', 'true');
  const t0 = performance.now();
  delete main.dataset.renderMs;
  try {
    if (!ctx.policies) ctx.policies = await get('/api/policies');
    const node = await view.render(ctx, name);
    if (seq !== renderSeq) return;  // a newer render won
    main.replaceChildren(node);
    main.dataset.view = name;
    // How long the view took to show (fetch, build, first frame): for benchmarks.
    requestAnimationFrame(() => { if (seq === renderSeq) main.dataset.renderMs = String(Math.round(performance.now() - t0)); });
    document.getElementById('gate').hidden = true;
    if (document.getElementById('live').classList.contains('off')) pollOnce();
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) {
      main.replaceChildren();
      document.getElementById('gate').hidden = false;
      document.getElementById('token-input').focus();
    } else if (!live) {
      main.replaceChildren(h('div', {class: 'error', role: 'alert'}, String(e.message || e)));
    }
  } finally {
    if (seq === renderSeq) main.removeAttribute('aria-busy');
  }
}

// Polls the change cursor; a move re-renders the current view in place.
let cursor = null;
let updates = 0;
async function poll() {
  await pollOnce();
  setTimeout(poll, POLL_MS);
}
async function pollOnce() {
  const live = document.getElementById('live');
  try {
    const c = await get('/api/changes');
    // Not while the user is typing into a filter: the cursor stays behind and
    // the view refreshes at the first poll after they leave the field.
    const editing = document.activeElement?.matches?.('main form :is(input, select, textarea)');
    if (editing) return;
    if (cursor !== null && c.cursor !== cursor) {
      updates++;
      document.body.dataset.liveUpdates = String(updates);
      await render({live: true});
      live.classList.remove('pulse');
      void live.offsetWidth;  // restart the animation
      live.classList.add('pulse');
    }
    cursor = c.cursor;
    live.textContent = `live · ${Number(c.events).toLocaleString('en-US')} events received`;
    live.className = live.className.replace(/\boff\b/, '').trim();
  } catch (e) {
    live.textContent = e instanceof ApiError && e.status === 401 ? 'locked' : 'offline';
    live.classList.add('off');
  }
}

function start() {
  takeTokenFromUrl();
  document.getElementById('token-form').addEventListener('submit', e => {
    e.preventDefault();
    setToken(document.getElementById('token-input').value.trim());
    ctx.policies = null;
    render();
  });
  document.getElementById('nav').addEventListener('click', e => {
    const a = e.target.closest('a[data-view]');
    if (!a) return;
    e.preventDefault();
    closeDrawer();
    ctx.go({view: a.dataset.view});
  });
  // In-page links ("?view=...") route without reloading.
  document.addEventListener('click', e => {
    const a = e.target.closest('a[href^="?"]');
    // (the navigation bar routes its own clicks: one render, one set of requests)
    if (!a || e.defaultPrevented || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    closeDrawer();
    ctx.go(Object.fromEntries(new URLSearchParams(a.getAttribute('href').slice(1))));
  });
  // A token pasted into the address bar of an open page.
  window.addEventListener('hashchange', () => {
    if (!location.hash.includes('token=')) return;
    takeTokenFromUrl();
    ctx.policies = null;
    render();
  });
  window.addEventListener('popstate', () => { ctx.params = new URLSearchParams(location.search); render(); });
  document.addEventListener('keydown', e => { if (e.key === 'Escape') closeDrawer(); });
  document.getElementById('drawer-close').addEventListener('click', closeDrawer);
  render();
  poll();
}

start();
