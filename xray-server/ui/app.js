// The X-Ray web UI: a router over the URL's fragment (`#/runs/{id}`), so every view is a
// shareable link and none shadows an API path. Each view renders into <main id="view">.

import { h, mount, errorBox } from './dom.js';
import { health } from './api.js';
import { runsView } from './runs.js';
import { runView } from './run.js';
import { itemView } from './item.js';
import { stepsView } from './steps.js';
import { diffView } from './diff.js';
import { pipelinesView } from './pipelines.js';
import { dashboardView } from './dashboard.js';
import { compareView } from './compare.js';

// Script errors are kept for the browser tests to check (and shown in the console as usual).
window.__xrayErrors = [];
window.addEventListener('error', (e) => window.__xrayErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__xrayErrors.push(String(e.reason)));

const view = document.getElementById('view');
let generation = 0;

/** Splits `#/runs/abc?x=1` into decoded path segments and query parameters. */
function parse(hash) {
  const raw = hash.replace(/^#/, '') || '/runs';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const params = Object.fromEntries(new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1)));
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, params };
}

/** The view's name, for styles and tests: `runs`, `run`, `item`, `dashboard`, `compare`… */
function viewName(parts) {
  if (!parts.length) return 'runs';
  if (parts[0] === 'runs' && parts.length > 1) return parts[2] ? 'item' : 'run';
  if (parts[0] === 'pipelines' && parts.length > 1) return parts[2] ? 'compare' : 'dashboard';
  return parts[0];
}

function route() {
  const { parts, params } = parse(location.hash);
  const gen = ++generation;
  // A view checks `alive()` after each await, so a slow answer never paints over a newer view.
  const ctx = { params, alive: () => gen === generation };
  let nav = 'runs';
  let render;
  if (parts[0] === 'runs' && parts.length === 1) render = () => runsView(view, ctx);
  else if (parts[0] === 'runs' && parts.length === 2) render = () => runView(view, ctx, parts[1]);
  else if (parts[0] === 'runs' && parts[2] === 'items' && parts.length === 4) render = () => itemView(view, ctx, parts[1], parts[3]);
  else if (parts[0] === 'steps') { nav = 'steps'; render = () => stepsView(view, ctx); }
  else if (parts[0] === 'diff') { nav = 'diff'; render = () => diffView(view, ctx); }
  else if (parts[0] === 'pipelines' && parts.length === 1) { nav = 'pipelines'; render = () => pipelinesView(view, ctx); }
  else if (parts[0] === 'pipelines' && parts.length === 2) { nav = 'pipelines'; render = () => dashboardView(view, ctx, parts[1]); }
  else if (parts[0] === 'pipelines' && parts[2] === 'compare' && parts.length === 3) { nav = 'pipelines'; render = () => compareView(view, ctx, parts[1]); }
  else render = () => mount(view, errorBox('Unknown page:', location.hash), h('p', { class: 'pad' }, h('a', { href: '#/runs' }, 'Go to the runs')));
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  document.body.dataset.view = viewName(parts);
  window.scrollTo(0, 0);
  Promise.resolve()
    .then(render)
    .catch((e) => {
      if (ctx.alive()) mount(view, errorBox('Error:', e.message));
    })
    .finally(() => {
      if (ctx.alive()) document.body.dataset.ready = String(gen);
    });
}

window.addEventListener('hashchange', route);
route();

health()
  .then((hl) => mount(document.getElementById('server'), `${hl.backend} · v${hl.version}`))
  .catch((e) => mount(document.getElementById('server'), h('span', { class: 'bad' }, `server: ${e.message}`)));
