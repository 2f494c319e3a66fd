// Compare (`#/pipelines/{name}/compare?a=version:1.0&b=version:1.1`): two sets of a pipeline's
// runs — two versions, or two time windows (`since:<t>,until:<t>`) — side by side, the step and
// the reason that moved most first, from `GET /pipelines/{name}/compare`.

import { h, mount, href, count, pct, ms, score, title, loading, errorBox, stepType, formValues } from './dom.js';
import { comparePipeline, listPipelines } from './api.js';

/** `A → B`, with the change when both are known. */
function arrow(a, b, fmt, cls = '') {
  return h('span', { class: `arrow ${cls}` }, h('span', { class: 'a' }, fmt(a)), ' → ', h('span', { class: 'b' }, fmt(b)));
}

/** A share change in points, signed and coloured: `+48.0 pts`. */
function change(v) {
  const pts = (v * 100).toFixed(1);
  const cls = v > 0.0005 ? 'up' : v < -0.0005 ? 'down' : 'flat';
  return h('span', { class: `change ${cls}` }, `${v > 0 ? '+' : ''}${pts} pts`);
}

/** Renders the comparison `ctx.params.a` vs `ctx.params.b` of `pipeline`. */
export async function compareView(view, ctx, pipeline) {
  const { a = '', b = '' } = ctx.params;
  const form = h('form', { class: 'filters', id: 'compare-form' },
    h('label', { class: 'field' }, 'A', h('input', { name: 'a', value: a, placeholder: 'version:1.0', list: 'compare-versions', size: 34 })),
    h('label', { class: 'field' }, 'B', h('input', { name: 'b', value: b, placeholder: 'since:2026-12-01,until:2026-12-02', list: 'compare-versions', size: 34 })),
    h('datalist', { id: 'compare-versions' }),
    h('button', { class: 'primary', type: 'submit' }, 'Compare'),
    h('span', { class: 'hint' }, 'A selector is version:<v> or since:<time>,until:<time>'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = href.compare(pipeline, formValues(form));
  });
  const body = h('div', {});
  mount(view,
    h('div', { class: 'crumbs' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' / ', h('a', { href: href.pipeline(pipeline) }, pipeline), ' / compare'),
    title(`Compare ${pipeline}`), form, body);
  listPipelines({}).then((list) => {
    const p = list.pipelines.find((x) => x.pipeline === pipeline);
    const options = form.querySelector('datalist');
    for (const v of (p ? p.versions : [])) options.append(h('option', { value: `version:${v}` }));
  }).catch(() => { /* suggestions only */ });
  if (!a || !b) {
    mount(body, h('p', { class: 'empty' }, 'Give two selectors to compare: two versions, or two time windows.'));
    return;
  }
  mount(body, loading('Comparing…'));
  let cmp;
  try {
    cmp = await comparePipeline(pipeline, { a, b });
  } catch (e) {
    if (ctx.alive()) mount(body, errorBox('The server refused:', e.message));
    return;
  }
  if (!ctx.alive()) return;
  mount(body,
    h('div', { class: 'card headline', id: 'compare-headline' },
      cmp.headline ? h('strong', {}, cmp.headline) : h('span', { class: 'muted' }, 'Nothing moved between A and B.'),
      h('div', { class: 'muted' }, `A: ${cmp.a} (${count(cmp.a_runs)} runs) · B: ${cmp.b} (${count(cmp.b_runs)} runs)`)),
    cmp.steps.length ? h('table', { class: 'grid compare', id: 'compare-steps' },
      h('thead', {}, h('tr', {}, ['Step', 'Runs', 'Rejection rate', 'Moved', 'Score of decisions', 'Duration p50'].map((t) => h('th', {}, t)))),
      cmp.steps.map(stepRows)) : h('p', { class: 'empty' }, 'Neither side has runs.'));
}

/** A step's row, then a row per reason. */
function stepRows(st) {
  const rate = st.b.rejection_rate !== null && st.a.rejection_rate !== null ? st.b.rejection_rate - st.a.rejection_rate : null;
  return h('tbody', { class: 'stepchange', dataset: { step: st.step } },
    h('tr', { class: 'step' },
      h('td', { class: 'name' }, st.step, ' ', stepType(st.step_type)),
      h('td', { class: 'num' }, arrow(st.a.runs, st.b.runs, count)),
      h('td', { class: 'num' }, arrow(st.a.rejection_rate, st.b.rejection_rate, pct), rate === null ? null : [' ', change(rate)]),
      h('td', { class: 'num moved' }, `${(st.moved * 100).toFixed(1)} pts`),
      h('td', { class: 'num' }, arrow(st.a.score_mean, st.b.score_mean, score)),
      h('td', { class: 'num' }, arrow(st.a.duration_ms_p50, st.b.duration_ms_p50, ms))),
    st.reasons.map((r) => h('tr', { class: 'reason', dataset: { reason: r.reason } },
      h('td', { class: 'rname' }, r.reason),
      h('td', { class: 'num' }, arrow(r.a_count, r.b_count, count)),
      h('td', { class: 'num' }, arrow(r.a_share, r.b_share, pct), ' of input'),
      h('td', { class: 'num' }, change(r.change)),
      h('td', { colspan: 2 }))));
}
