// The collector's JSON API with the bearer token. The token comes from the
// URL fragment (#token=..., never sent to the server), is kept for this tab
// only and removed from the address bar so a shared link never carries it.
const KEY = 'idflow-token';

export function takeTokenFromUrl() {
  const frag = new URLSearchParams(location.hash.slice(1));
  const t = frag.get('token');
  if (t) {
    sessionStorage.setItem(KEY, t);
    history.replaceState(history.state, '', location.pathname + location.search);
  }
}

export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function token() { return sessionStorage.getItem(KEY) || ''; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function get(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const url = path + (q.toString() ? '?' + q : '');
  const t = token();
  const r = await fetch(url, {headers: t ? {Authorization: 'Bearer ' + t} : {}, cache: 'no-store'});
  if (!r.ok) {
    let msg = `HTTP ${r.status}`;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  return r.json();
}
