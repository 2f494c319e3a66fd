// Building the page: elements are made with `h`, and every piece of data goes in as a text node
// (never as HTML), so item ids, reasons and details cannot inject markup or script.

/** An element: `h('a', {href: '#/x', class: 'y'}, 'text', child, [more])`. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const enc = encodeURIComponent;

/** Shareable links, all routed by the fragment. */
export const href = {
  runs: (params) => '#/runs' + qs(params),
  run: (runId, params) => `#/runs/${enc(runId)}` + qs(params),
  item: (runId, item) => `#/runs/${enc(runId)}/items/${enc(item)}`,
  steps: (params) => '#/steps' + qs(params),
  diff: (a, b) => '#/diff' + qs({ a, b }),
  pipeline: (name, params) => `#/pipelines/${enc(name)}` + qs(params),
  compare: (name, params) => `#/pipelines/${enc(name)}/compare` + qs(params),
};

/** `?k=v&…` without empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

const num = new Intl.NumberFormat('en-US');

/** `1,021`, or `?` when unknown. */
export function count(n) {
  return n === null || n === undefined ? '?' : num.format(n);
}

/** `0.4 ms`, `12.3 ms`, `1.24 s`, `3m 12s`. */
export function ms(v) {
  if (v === null || v === undefined) return '—';
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60000) return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
  const m = Math.floor(v / 60000);
  return `${m}m ${Math.round((v % 60000) / 1000)}s`;
}

/** `69.9%`. */
export function pct(v) {
  if (v === null || v === undefined) return '—';
  return `${(v * 100).toFixed(v >= 0.999 || v === 0 ? 0 : 1)}%`;
}

/** A score with two decimals. */
export function score(v) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(3).replace(/0$/, '');
}

const pad = (n) => String(n).padStart(2, '0');

/** `2026-11-26 15:03:12` in local time. */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `3 min ago`. */
export function ago(iso) {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A time element: local time, with the exact UTC time as its tooltip. */
export function time(iso) {
  return h('time', { datetime: iso || '', title: iso ? `${iso} (${ago(iso)})` : '' }, when(iso));
}

/** Compact JSON, cut at `max` characters. */
export function short(v, max = 120) {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** A JSON value, pretty-printed in a scrolling box; very large values are cut with a way to see all. */
export function json(v, cls = '') {
  const full = JSON.stringify(v, null, 2) ?? 'null';
  const limit = 20000;
  const pre = h('pre', { class: `json ${cls}` }, full.length > limit ? full.slice(0, limit) + '\n…' : full);
  if (full.length <= limit) return pre;
  const more = h('button', { class: 'link', onclick: () => { pre.textContent = full; more.remove(); } },
    `show all ${count(full.length)} characters`);
  return h('div', {}, pre, more);
}

/** `completed` / `failed` / `running`, coloured. */
export function status(s) {
  return h('span', { class: `pill status-${s}` }, s);
}

/** The step type, coloured the same everywhere (timeline bars too). */
export function stepType(t) {
  return h('span', { class: `type type-${t}` }, t);
}

/** A red box with a message. */
export function errorBox(title, message) {
  return h('div', { class: 'errorbox', role: 'alert' }, h('strong', {}, title), ' ', h('span', { class: 'msg' }, message));
}

/** A horizontal bar filled to `fraction` (0..1). */
export function bar(fraction, cls = '') {
  const f = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h('span', { class: `meter ${cls}` }, h('span', { class: 'fill', style: { width: `${(f * 100).toFixed(2)}%` } }));
}

/** A page header: title, then anything after it. */
export function title(text, ...rest) {
  return h('div', { class: 'pagehead' }, h('h1', {}, text), ...rest);
}

/** A muted "loading" line. */
export function loading(what = 'Loading…') {
  return h('p', { class: 'muted pad loading' }, what);
}

/** Reads a form's named fields into an object, trimming text. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === 'string' ? v.trim() : v;
  return out;
}

/** Turns a `datetime-local` value into RFC 3339 UTC (what the API takes), keeping other text. */
export function toApiTime(v) {
  if (!v) return '';
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) return d.toISOString();
  }
  return v;
}

/** The other way round, to fill a `datetime-local` field from the URL. */
export function toLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `items` rendered into `list` a chunk of `size` at a time, with a "show more" button for the rest. */
export function chunked(list, items, size, render) {
  let shown = 0;
  const more = h('button', { class: 'more' });
  const step = () => {
    const next = items.slice(shown, shown + size);
    for (const it of next) list.appendChild(render(it));
    shown += next.length;
    const left = items.length - shown;
    more.hidden = left <= 0;
    more.textContent = `Show ${count(Math.min(size, left))} more (${count(left)} left)`;
  };
  more.addEventListener('click', step);
  step();
  return h('div', { class: 'chunked' }, list, more);
}
