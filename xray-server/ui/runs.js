// Runs: newest first, filtered by pipeline, status and time, one page (of the API's cursors) at a
// time. Tick two runs to compare them.

import { h, mount, href, count, ms, short, status, time, title, loading, errorBox, formValues, toApiTime, toLocalInput } from './dom.js';
import { listRuns } from './api.js';

const STATUSES = ['', 'completed', 'failed', 'running'];

/** Renders the runs list for `ctx.params` (pipeline, status, since, until, limit, cursor). */
export async function runsView(view, ctx) {
  const p = ctx.params;
  const filters = {
    pipeline: p.pipeline || '',
    status: p.status || '',
    since: p.since || '',
    until: p.until || '',
    limit: p.limit || '50',
  };
  const form = h('form', { class: 'filters', id: 'runs-filter' },
    field('Pipeline', h('input', { name: 'pipeline', value: filters.pipeline, placeholder: 'any', list: 'pipelines', autocomplete: 'off' })),
    field('Status', h('select', { name: 'status' }, STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s || 'any')))),
    field('Started after', h('input', { name: 'since', type: 'datetime-local', value: toLocalInput(filters.since) })),
    field('Started before', h('input', { name: 'until', type: 'datetime-local', value: toLocalInput(filters.until) })),
    field('Per page', h('select', { name: 'limit' }, ['25', '50', '100', '200'].map((n) => h('option', { value: n, selected: n === filters.limit }, n)))),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Filter'),
      h('a', { class: 'button', href: '#/runs' }, 'Clear')),
    h('datalist', { id: 'pipelines' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = formValues(form);
    location.hash = href.runs({ ...v, since: toApiTime(v.since), until: toApiTime(v.until), limit: v.limit === '50' ? '' : v.limit });
  });
  const body = h('div', {}, loading('Loading runs…'));
  const compare = h('div', { class: 'comparebar', hidden: true });
  mount(view, title('Runs', h('span', { class: 'muted' }, 'newest first')), form, compare, body);

  let page;
  try {
    page = await listRuns({ ...filters, cursor: p.cursor });
  } catch (e) {
    if (ctx.alive()) mount(body, errorBox('The server refused:', e.message));
    return;
  }
  if (!ctx.alive()) return;
  const dl = form.querySelector('#pipelines');
  for (const name of [...new Set(page.runs.map((r) => r.pipeline))].sort()) dl.appendChild(h('option', { value: name }));

  if (page.runs.length === 0) {
    mount(body, h('p', { class: 'empty' }, p.cursor ? 'No more runs.' : 'No runs match these filters.'));
    return;
  }
  const picked = [];
  const updateCompare = () => {
    compare.hidden = picked.length === 0;
    const [a, b] = [...picked].sort((x, y) => (x.started_at < y.started_at ? -1 : 1));
    mount(compare,
      h('span', {}, picked.length === 1 ? 'Tick one more run to compare.' : `Compare ${picked.length} runs: the older is the baseline.`),
      picked.length === 2 ? h('a', { class: 'button primary', id: 'compare-link', href: href.diff(a.run_id, b.run_id) }, 'Compare →') : null);
  };
  const rows = page.runs.map((r) => {
    const box = h('input', {
      type: 'checkbox', title: 'Compare this run', 'aria-label': `compare run ${r.run_id}`,
      onchange: (e) => {
        if (e.target.checked) {
          picked.push(r);
          if (picked.length > 2) {
            const dropped = picked.shift();
            const other = rowsById.get(dropped.run_id);
            if (other) other.querySelector('input').checked = false;
          }
        } else {
          picked.splice(picked.indexOf(r), 1);
        }
        updateCompare();
      },
    });
    const link = href.run(r.run_id);
    const out = r.status === 'failed'
      ? h('span', { class: 'bad' }, short(r.error || 'failed', 140))
      : h('code', {}, short(r.output, 140));
    return h('tr', { class: `run status-row-${r.status}`, dataset: { runId: r.run_id } },
      h('td', { class: 'pick' }, box),
      h('td', {}, status(r.status)),
      h('td', { class: 'pipeline' }, h('a', { href: href.runs({ pipeline: r.pipeline }), title: 'Only this pipeline' }, r.pipeline),
        r.replay_of ? h('span', { class: 'pill replay', title: `a replay of ${r.replay_of}` }, 'replay') : null,
        r.version ? h('span', { class: 'pill version', title: 'version' }, r.version) : null),
      h('td', { class: 'when' }, h('a', { href: link }, time(r.started_at))),
      h('td', { class: 'num' }, ms(r.duration_ms)),
      h('td', { class: 'io' }, h('a', { href: link, class: 'plain' }, h('code', {}, short(r.input, 90)))),
      h('td', { class: 'io out' }, out),
      h('td', { class: 'id' }, h('a', { href: link, title: r.run_id }, r.run_id.length > 13 ? r.run_id.slice(0, 8) + '…' : r.run_id)));
  });
  const rowsById = new Map(page.runs.map((r, i) => [r.run_id, rows[i]]));
  const nav = h('div', { class: 'pager' },
    h('span', { class: 'muted' }, `${count(page.runs.length)} runs on this page`),
    p.cursor ? h('a', { class: 'button', href: href.runs({ ...filters, limit: p.limit }) }, '⇤ Newest') : null,
    page.next_cursor ? h('a', { class: 'button', id: 'next-page', href: href.runs({ ...filters, limit: p.limit, cursor: page.next_cursor }) }, 'Older runs →') : h('span', { class: 'muted' }, 'end of the list'));
  mount(body,
    h('table', { class: 'grid runs' },
      h('thead', {}, h('tr', {}, ['', 'Status', 'Pipeline', 'Started', 'Duration', 'Input', 'Output / error', 'Run'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)),
    nav);
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

export { field };
