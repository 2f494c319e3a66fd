// Step search: `GET /steps` across every run and pipeline, with the same filters; each hit links
// to its run, opened at that step.

import { h, mount, href, count, ms, pct, score, short, stepType, time, title, loading, formValues, toApiTime, toLocalInput, bar, errorBox } from './dom.js';
import { searchSteps } from './api.js';
import { field } from './runs.js';

const TYPES = ['', 'generate', 'retrieve', 'filter', 'rank', 'select', 'transform'];
const NUMBERS = [
  ['rejection_rate_gt', 'Rejection rate >', '0.9'], ['rejection_rate_lt', 'Rejection rate <', ''],
  ['duration_gt', 'Duration > (ms)', '5000'], ['duration_lt', 'Duration < (ms)', ''],
  ['score_gt', 'Score >', ''], ['score_lt', 'Score <', '0.5'],
];
const KEYS = ['step_type', 'name', 'pipeline', ...NUMBERS.map((n) => n[0]), 'since', 'until', 'limit'];

/** Renders the step search for `ctx.params`. */
export async function stepsView(view, ctx) {
  const p = ctx.params;
  const filters = Object.fromEntries(KEYS.map((k) => [k, p[k] || '']));
  const form = h('form', { class: 'filters', id: 'steps-filter' },
    field('Type', h('select', { name: 'step_type' }, TYPES.map((t) => h('option', { value: t, selected: t === filters.step_type }, t || 'any')))),
    field('Name', h('input', { name: 'name', value: filters.name, placeholder: 'any' })),
    field('Pipeline', h('input', { name: 'pipeline', value: filters.pipeline, placeholder: 'any' })),
    NUMBERS.map(([k, label, ph]) => field(label, h('input', { name: k, value: filters[k], inputmode: 'decimal', placeholder: ph ? `e.g. ${ph}` : '', class: 'narrow' }))),
    field('Started after', h('input', { name: 'since', type: 'datetime-local', value: toLocalInput(filters.since) })),
    field('Started before', h('input', { name: 'until', type: 'datetime-local', value: toLocalInput(filters.until) })),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('a', { class: 'button', href: '#/steps' }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = formValues(form);
    location.hash = href.steps({ ...v, since: toApiTime(v.since), until: toApiTime(v.until), limit: filters.limit });
  });
  const examples = h('p', { class: 'muted examples' }, 'Try: ',
    h('a', { href: href.steps({ step_type: 'filter', rejection_rate_gt: '0.9' }) }, 'filters that dropped over 90%'), ' · ',
    h('a', { href: href.steps({ step_type: 'select', score_lt: '0.5' }) }, 'low-confidence picks'), ' · ',
    h('a', { href: href.steps({ step_type: 'generate', duration_gt: '5000' }) }, 'generations over 5 s'));
  const body = h('div', {}, loading('Searching…'));
  mount(view, title('Step search', h('span', { class: 'muted' }, 'across every run and pipeline, newest first')), form, examples, body);

  let page;
  try {
    page = await searchSteps({ ...filters, cursor: p.cursor });
  } catch (e) {
    if (ctx.alive()) mount(body, errorBox('The server refused the search:', e.message));
    return;
  }
  if (!ctx.alive()) return;
  if (!page.steps.length) {
    mount(body, h('p', { class: 'empty' }, p.cursor ? 'No more steps.' : 'No step matches these filters.'));
    return;
  }
  mount(body,
    h('table', { class: 'grid hits', id: 'step-hits' },
      h('thead', {}, h('tr', {}, ['Started', 'Pipeline', 'Step', 'Type', 'In → out', 'Rejected', 'Why', 'Duration', 'Run'].map((t) => h('th', {}, t)))),
      h('tbody', {}, page.steps.map((s) => {
        const link = href.run(s.run_id, { step: s.step_id });
        const reasons = Object.entries(s.rejections).sort((a, b) => b[1] - a[1]);
        return h('tr', { class: `hit${s.error ? ' failed' : ''}`, dataset: { runId: s.run_id, stepName: s.name } },
          h('td', { class: 'when' }, h('a', { href: link }, time(s.started_at))),
          h('td', {}, s.pipeline),
          h('td', { class: 'stepname' }, h('a', { href: link }, `#${s.position} ${s.name}`)),
          h('td', {}, stepType(s.step_type)),
          h('td', { class: 'num' }, `${count(s.input_count)} → ${count(s.output_count)}`),
          h('td', { class: 'rate' }, s.rejection_rate == null ? '—' : [bar(s.rejection_rate, 'rej'), ' ', pct(s.rejection_rate)]),
          h('td', { class: 'why' },
            s.error ? h('span', { class: 'bad' }, short(s.error, 100)) : null,
            s.decision ? h('span', {}, '★ ', h('b', {}, s.decision.selected), s.decision.score == null ? '' : ` (${score(s.decision.score)})`) : null,
            reasons.slice(0, 3).map(([r, n]) => h('span', { class: 'rchip' }, r, ' ', h('b', {}, count(n))))),
          h('td', { class: 'num' }, ms(s.duration_ms)),
          h('td', { class: 'id' }, h('a', { href: href.run(s.run_id), title: s.run_id }, s.run_id.length > 13 ? s.run_id.slice(0, 8) + '…' : s.run_id)));
      }))),
    h('div', { class: 'pager' },
      h('span', { class: 'muted' }, `${count(page.steps.length)} steps on this page`),
      p.cursor ? h('a', { class: 'button', href: href.steps(filters) }, '⇤ Newest') : null,
      page.next_cursor ? h('a', { class: 'button', id: 'next-page', href: href.steps({ ...filters, cursor: page.next_cursor }) }, 'Older steps →') : h('span', { class: 'muted' }, 'end of the list')));
}
