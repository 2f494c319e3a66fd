// Pipelines: every pipeline at a glance — its runs, how many failed, when it last ran, and the
// versions its runs gave — over a window (the last day by default). A name opens its dashboard.

import { h, mount, href, count, pct, ago, time, title, loading, errorBox } from './dom.js';
import { listPipelines } from './api.js';

const WINDOWS = [['1', 'last 24 hours'], ['7', 'last 7 days'], ['30', 'last 30 days'], ['', 'all time']];

/** Renders the pipelines' health for `ctx.params.days` (default 1). */
export async function pipelinesView(view, ctx) {
  const days = ctx.params.days ?? '1';
  const picker = h('select', { name: 'days', id: 'pipelines-window', 'aria-label': 'window' },
    WINDOWS.map(([v, label]) => h('option', { value: v, selected: v === days }, label)));
  picker.addEventListener('change', () => { location.hash = '#/pipelines' + (picker.value === '1' ? '' : `?days=${picker.value}`); });
  const body = h('div', {}, loading('Loading pipelines…'));
  mount(view, title('Pipelines', picker), body);
  const since = days ? new Date(Date.now() - Number(days) * 86400e3).toISOString() : undefined;
  let list;
  try {
    list = await listPipelines({ since });
  } catch (e) {
    if (ctx.alive()) mount(body, errorBox('The server refused:', e.message));
    return;
  }
  if (!ctx.alive()) return;
  if (!list.pipelines.length) {
    mount(body, h('p', { class: 'empty' }, 'No runs in this window.'));
    return;
  }
  mount(body, h('table', { class: 'grid pipelines', id: 'pipelines' },
    h('thead', {}, h('tr', {}, ['Pipeline', 'Runs', 'Failed', 'Last run', 'First run', 'Versions'].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.pipelines.map((p) => h('tr', { class: `pipeline${p.failed ? ' failing' : ''}`, dataset: { pipeline: p.pipeline } },
      h('td', { class: 'name' }, h('a', { href: href.pipeline(p.pipeline) }, p.pipeline),
        ' ', h('a', { class: 'muted small', href: href.runs({ pipeline: p.pipeline }) }, 'runs')),
      h('td', { class: 'num' }, count(p.runs)),
      h('td', { class: `num${p.failed ? ' bad' : ''}` },
        p.failed ? h('a', { href: href.runs({ pipeline: p.pipeline, status: 'failed' }) }, `${count(p.failed)} (${pct(p.failed / p.runs)})`) : '0'),
      h('td', { title: time(p.last_run_at) }, ago(p.last_run_at)),
      h('td', { title: time(p.first_run_at) }, ago(p.first_run_at)),
      h('td', { class: 'versions' }, p.versions.length ? p.versions.map((v) => h('span', { class: 'pill version' }, v)) : h('span', { class: 'muted' }, '—')))))));
}
