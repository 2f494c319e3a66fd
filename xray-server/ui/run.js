// One run: its header (status, input, output, error), a funnel of item counts, and a timeline of
// its steps (bars by start and duration, coloured by type). Steps arrive a page at a time; a
// step's reasons, samples and decision are fetched only when it is expanded. A run still running
// is read again every few seconds and drawn anew when it moved, until it ends.

import { h, mount, href, count, ms, pct, score, short, status, stepType, time, json, errorBox, bar, loading, chunked } from './dom.js';
import { runSteps, runStep } from './api.js';

const PAGE = 500;
const FUNNEL_MAX = 60;
/** How often a running run is read again (milliseconds). */
const LIVE_MS = 2000;

/** Renders the run `runId`; `ctx.params.step` names a step to open. */
export async function runView(view, ctx, runId) {
  mount(view, loading('Loading run…'));
  const first = await runSteps(runId, { limit: PAGE });
  if (!ctx.alive()) return;
  await draw(view, ctx, runId, first, ctx.params.step ? [ctx.params.step] : [], true);
}

/** Draws the run from its first page of steps, opening the steps `open` names (scrolled to the
 * first of them when `scroll`); then, while it runs, watches it. */
async function draw(view, ctx, runId, first, open, scroll) {
  const run = first.run;
  const steps = [];

  const timeline = h('div', { class: 'timeline', id: 'timeline' });
  const funnel = h('section', { class: 'card funnel', id: 'funnel' });
  const stepsHead = h('div', { class: 'sectionhead' });
  const more = h('div', { class: 'pager' });
  const span = timeSpan(run, first.steps);

  mount(view,
    crumbs(run),
    runHeader(run),
    funnel,
    h('section', { class: 'card' }, stepsHead, axis(span), timeline, more));

  const addPage = (page) => {
    const start = steps.length;
    steps.push(...page.steps);
    const frag = document.createDocumentFragment();
    for (const s of page.steps) frag.appendChild(stepRow(run, s, span));
    timeline.appendChild(frag);
    mount(more);
    if (page.next_cursor) {
      const btn = h('button', { class: 'more', id: 'more-steps' }, `Load the next ${PAGE} steps (${count(steps.length)} shown)`);
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        btn.textContent = 'Loading…';
        try {
          const next = await runSteps(runId, { limit: PAGE, cursor: page.next_cursor });
          if (ctx.alive()) addPage(next);
        } catch (e) {
          mount(more, errorBox('Could not load more steps:', e.message));
        }
      });
      more.appendChild(btn);
    }
    const failed = steps.filter((s) => s.error).length;
    mount(stepsHead,
      h('h2', {}, 'Steps'),
      h('span', { class: 'muted' }, `${count(steps.length)}${page.next_cursor ? '+' : ''} steps`),
      failed ? h('span', { class: 'pill status-failed' }, `${failed} failed`) : null,
      h('span', { class: 'legend' }, ['generate', 'retrieve', 'filter', 'rank', 'select', 'transform'].map(stepType)),
      h('span', { class: 'hint' }, 'click a step for its reasons, samples and decision'));
    renderFunnel(funnel, steps, Boolean(page.next_cursor));
    return start;
  };
  addPage(first);

  // A link to a step further down the run: load pages until it is there.
  let cursor = first.next_cursor;
  while (open.length && cursor && !open.every((id) => steps.some((s) => s.step_id === id))) {
    const next = await runSteps(runId, { limit: PAGE, cursor });
    if (!ctx.alive()) return;
    addPage(next);
    cursor = next.next_cursor;
  }
  const rows = [...timeline.querySelectorAll('.step')].filter((r) => open.includes(r.dataset.stepId));
  for (const row of rows) row.querySelector('.steprow').click();
  if (scroll && rows.length) rows[0].scrollIntoView({ block: 'start' });

  // Only a run whose steps fit one page is redrawn: one with more keeps what was loaded.
  if (run.status === 'running' && !first.next_cursor) {
    const live = h('span', { class: 'pill status-running', id: 'live', title: 'this run has not ended yet' }, `live · read again every ${LIVE_MS / 1000} s`);
    stepsHead.insertBefore(live, stepsHead.querySelector('.legend'));
    watch(view, ctx, runId, JSON.stringify(first));
  }
}

/** Reads the running run again after LIVE_MS and, when anything changed, draws it anew with the
 * same steps open, the page where it was, and the item box as it was being typed. */
function watch(view, ctx, runId, shown) {
  setTimeout(async () => {
    if (!ctx.alive()) return;
    if (document.hidden) {
      watch(view, ctx, runId, shown); // a tab in the background asks nothing
      return;
    }
    let page = null;
    try {
      page = await runSteps(runId, { limit: PAGE });
    } catch {
      // The server is away for a moment: try again at the next tick.
    }
    if (!ctx.alive()) return;
    if (!page || JSON.stringify(page) === shown) {
      watch(view, ctx, runId, shown);
      return;
    }
    const open = [...view.querySelectorAll('.step.open')].map((el) => el.dataset.stepId);
    const item = view.querySelector('#trace-form input');
    const typed = item ? { value: item.value, focused: document.activeElement === item } : null;
    const y = window.scrollY;
    await draw(view, ctx, runId, page, open, false);
    if (!ctx.alive()) return;
    window.scrollTo(0, y);
    const again = view.querySelector('#trace-form input');
    if (typed && again) {
      again.value = typed.value;
      if (typed.focused) again.focus();
    }
  }, LIVE_MS);
}

function crumbs(run) {
  return h('nav', { class: 'crumbs' },
    h('a', { href: '#/runs' }, 'Runs'), ' / ',
    h('a', { href: href.runs({ pipeline: run.pipeline }) }, run.pipeline), ' / ',
    h('span', {}, run.run_id));
}

/** The run's facts, with its error up front when it failed, and the item and compare boxes. */
export function runHeader(run, { compact = false } = {}) {
  const trace = h('form', { class: 'inline', id: 'trace-form' },
    h('input', { name: 'item', placeholder: 'item id, e.g. laptop_stand_42', required: true, 'aria-label': 'item id', autocomplete: 'off' }),
    h('button', { type: 'submit' }, 'Trace item'));
  trace.addEventListener('submit', (e) => {
    e.preventDefault();
    const item = trace.item.value.trim();
    if (item) location.hash = href.item(run.run_id, item);
  });
  return h('section', { class: `card runhead status-card-${run.status}`, id: 'run-header', dataset: { runId: run.run_id } },
    h('div', { class: 'runtitle' },
      status(run.status),
      h('h1', {}, run.pipeline),
      h('span', { class: 'muted mono', title: 'run id' }, run.run_id),
      h('span', { class: 'spacer' }),
      compact ? null : trace,
      compact ? null : h('a', { class: 'button', href: href.diff(run.run_id, ''), id: 'compare-run' }, 'Compare with…')),
    run.error ? errorBox('Run failed:', run.error) : null,
    h('dl', { class: 'facts' },
      fact('Started', time(run.started_at)),
      fact('Ended', time(run.ended_at)),
      fact('Duration', ms(run.duration_ms)),
      run.version ? fact('Version', run.version) : null,
      run.replay_of ? fact('Replay of', h('span', { id: 'replay-of' },
        h('a', { href: href.run(run.replay_of) }, run.replay_of), ' · ',
        h('a', { href: href.diff(run.replay_of, run.run_id) }, 'what changed →'))) : null,
      fact('Input', h('code', { class: 'wrap' }, short(run.input, 300) || '—')),
      fact('Output', h('code', { class: 'wrap out' }, short(run.output, 300) || '—')),
      run.metadata ? fact('Metadata', h('code', { class: 'wrap' }, short(run.metadata, 300))) : null));
}

function fact(k, v) {
  return h('div', { class: 'fact' }, h('dt', {}, k), h('dd', {}, v));
}

/** The window the timeline shows: the run's start to its end, or to the end of the last step of
 * the first page while it is still running. */
function timeSpan(run, steps) {
  const start = new Date(run.started_at).getTime();
  let dur = run.duration_ms || (run.ended_at ? new Date(run.ended_at).getTime() - start : 0);
  if (!dur) {
    for (const s of steps) dur = Math.max(dur, new Date(s.started_at).getTime() - start + (s.duration_ms || 0));
  }
  return { start, dur: Math.max(dur, 0.001) };
}

function axis(span) {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { class: 'tick', style: { left: `${f * 100}%` } }, f === 0 ? '0' : ms(span.dur * f)));
  return h('div', { class: 'steprow axis' },
    h('span', { class: 'pos' }, '#'), h('span', { class: 'name' }, 'step'),
    h('span', { class: 'track' }, ticks),
    h('span', { class: 'counts' }, 'in → out'), h('span', { class: 'why' }, 'why'), h('span', { class: 'dur' }, 'time'));
}

/** What a step is about, in a few words: its error, decision or biggest rejection reasons. */
function why(s) {
  if (s.error) return h('span', { class: 'bad' }, `✗ ${short(s.error, 90)}`);
  if (s.decision) return h('span', {}, '★ chose ', h('strong', {}, s.decision.selected), s.decision.score == null ? '' : ` (${score(s.decision.score)})`);
  const reasons = Object.entries(s.rejections || {}).sort((a, b) => b[1] - a[1]);
  if (!reasons.length) return '';
  return h('span', { class: 'reasons' }, reasons.slice(0, 3).map(([r, n]) => h('span', { class: 'rchip' }, r, ' ', h('b', {}, count(n)))),
    reasons.length > 3 ? h('span', { class: 'muted' }, ` +${reasons.length - 3}`) : null);
}

function stepRow(run, s, span) {
  const t0 = new Date(s.started_at).getTime() - span.start;
  const left = Math.max(0, Math.min(1, t0 / span.dur));
  const width = Math.max(0, Math.min(1 - left, (s.duration_ms || 0) / span.dur));
  const kept = s.input_count ? (s.output_count ?? 0) / s.input_count : null;
  const detail = h('div', { class: 'stepdetail', hidden: true });
  const row = h('div', { class: `steprow${s.error ? ' failed' : ''}`, role: 'button', tabindex: '0', 'aria-expanded': 'false' },
    h('span', { class: 'pos' }, s.position),
    h('span', { class: 'name', title: s.name }, h('i', { class: `dot type-${s.step_type}`, title: s.step_type }), s.name),
    h('span', { class: 'track' }, h('span', { class: `barspan type-${s.step_type}`, style: { left: `${(left * 100).toFixed(3)}%`, width: `max(2px, ${(width * 100).toFixed(3)}%)` }, title: `${s.step_type} · starts at +${ms(t0)} · ${ms(s.duration_ms)}` })),
    h('span', { class: 'counts', title: kept == null ? '' : `${pct(kept)} of the input went on` },
      h('span', { class: 'io' }, `${count(s.input_count)} → ${count(s.output_count)}`),
      kept == null ? null : bar(kept, 'kept')),
    h('span', { class: 'why' }, why(s)),
    h('span', { class: 'dur' }, ms(s.duration_ms)));
  const wrap = h('div', { class: `step${s.error ? ' failed' : ''}`, dataset: { stepId: s.step_id, stepName: s.name, position: s.position } }, row, detail);
  let loaded = false;
  const toggle = async () => {
    const open = detail.hidden;
    detail.hidden = !open;
    row.setAttribute('aria-expanded', String(open));
    wrap.classList.toggle('open', open);
    if (!open || loaded) return;
    loaded = true;
    mount(detail, loading('Loading step…'));
    try {
      mount(detail, stepDetail(run, await runStep(run.run_id, s.step_id)));
    } catch (e) {
      loaded = false;
      mount(detail, errorBox('Could not load the step:', e.message));
    }
  };
  row.addEventListener('click', toggle);
  row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
  return wrap;
}

/** A step in full: error, decision, rejection reasons with a bar each, samples, acceptances. */
export function stepDetail(run, st) {
  const reasons = Object.entries(st.rejections || {}).sort((a, b) => b[1].count - a[1].count);
  const denom = st.input_count || st.rejected_count + (st.acceptances?.count || 0) || 1;
  const sampled = st.capture !== 'full';
  return h('div', { class: 'detailgrid' },
    st.error ? errorBox('Step failed:', st.error) : null,
    h('dl', { class: 'facts small' },
      fact('Type', stepType(st.step_type)),
      fact('In → out', `${count(st.input_count)} → ${count(st.output_count)}`),
      fact('Rejected', `${count(st.rejected_count)} (${pct(st.rejection_rate)})`),
      fact('Accepted', count(st.acceptances?.count ?? 0)),
      fact('Started', time(st.started_at)),
      fact('Duration', ms(st.duration_ms)),
      fact('Capture', h('span', { title: sampled ? 'counts are exact; items are samples' : 'every item was kept' }, st.capture)),
      fact('Step id', h('span', { class: 'mono' }, st.step_id))),
    st.decision ? h('div', { class: 'decision' },
      h('h3', {}, 'Decision'),
      h('p', { class: 'chose' }, '★ Selected ', h('a', { class: 'item', href: href.item(run.run_id, st.decision.selected) }, st.decision.selected),
        st.decision.score == null ? null : h('span', { class: 'score' }, ' score ', h('b', {}, score(st.decision.score)), bar(st.decision.score, 'scorebar'))),
      st.decision.details == null ? null : json(st.decision.details)) : null,
    st.ranking ? ranking(run, st) : null,
    reasons.length ? h('div', { class: 'rejections' },
      h('h3', {}, 'Rejected, by reason'),
      h('table', { class: 'grid reasons' },
        h('thead', {}, h('tr', {}, ['Reason', 'Count', '', 'Of input', 'Kept samples'].map((t) => h('th', {}, t)))),
        h('tbody', {}, reasons.map(([reason, r]) => reasonRows(run, reason, r, denom))))) : null,
    (st.acceptances?.count || st.acceptances?.samples?.length) ? acceptances(run, st.acceptances) : null,
    h('div', { class: 'payloads' },
      st.input != null ? h('details', {}, h('summary', {}, 'Input'), json(st.input)) : null,
      st.output != null ? h('details', {}, h('summary', {}, 'Output'), json(st.output)) : null,
      st.attributes != null ? h('details', { open: true }, h('summary', {}, 'Attributes'), json(st.attributes)) : null));
}

/** A rank step's kept list in order of position, with the cutoff line and the sampled tail. */
function ranking(run, st) {
  const r = st.ranking;
  const rows = [];
  let last = 0;
  let cutShown = false;
  const cutLine = () => h('tr', { class: 'cutoff' }, h('td', { colspan: '4' },
    `cutoff: the top ${count(r.cutoff)} went on` + (st.margin == null ? '' : ` · margin ${score(st.margin)} (last in ${score(r.cutoff_score)}, first out ${score(r.first_out_score)})`)));
  for (const s of r.samples) {
    if (r.cutoff != null && !cutShown && s.position > r.cutoff) { rows.push(cutLine()); cutShown = true; }
    if (s.position > last + 1) rows.push(h('tr', { class: 'gap' }, h('td', { colspan: '4', class: 'muted' }, `… positions ${last + 1}–${s.position - 1} ${st.capture === 'full' ? 'not ranked' : 'not kept (a uniform sample of the rest is shown)'}`)));
    rows.push(h('tr', { class: 'ranked', dataset: { position: s.position } },
      h('td', { class: 'num' }, `#${s.position}`),
      h('td', {}, h('a', { class: 'item', href: href.item(run.run_id, s.item_id) }, s.item_id)),
      h('td', { class: 'num' }, score(s.score)),
      h('td', {}, s.details == null ? '' : h('code', { class: 'details' }, short(s.details, 160)))));
    last = s.position;
  }
  if (r.cutoff != null && !cutShown) rows.push(cutLine());
  return h('div', { class: 'ranking' },
    h('h3', {}, `Ranking: ${count(r.count)} items`, r.samples.length < r.count ? h('span', { class: 'muted' }, ` (${count(r.samples.length)} kept)`) : null),
    h('table', { class: 'grid ranking' },
      h('thead', {}, h('tr', {}, ['Position', 'Item', 'Score', 'Details'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)));
}

function reasonRows(run, reason, r, denom) {
  const list = h('tr', { class: 'samplesrow', hidden: true }, h('td', { colspan: '5' }, samples(run, r.samples, 'rejected')));
  const toggle = h('button', { class: 'link', onclick: () => { list.hidden = !list.hidden; } },
    r.samples.length ? `${count(r.samples.length)} ▾` : 'none kept');
  if (!r.samples.length) toggle.disabled = true;
  return [
    h('tr', { class: 'reason', dataset: { reason } },
      h('td', { class: 'rname' }, reason),
      h('td', { class: 'num' }, count(r.count)),
      h('td', { class: 'barcell' }, bar(r.count / denom, 'rej')),
      h('td', { class: 'num muted' }, pct(r.count / denom)),
      h('td', {}, toggle)),
    list,
  ];
}

function acceptances(run, acc) {
  const list = h('div', { class: 'acceptedlist', hidden: true }, samples(run, acc.samples, 'accepted'));
  const toggle = h('button', { class: 'link toggle', onclick: () => { list.hidden = !list.hidden; } },
    acc.samples.length ? `${count(acc.samples.length)} kept ▾` : 'none kept');
  if (!acc.samples.length) toggle.disabled = true;
  return h('div', { class: 'acceptances' }, h('h3', {}, `Accepted: ${count(acc.count)}`, toggle), list);
}

function samples(run, list, outcome) {
  if (!list || !list.length) return h('p', { class: 'muted' }, 'No items kept.');
  return chunked(h('ul', { class: `samples ${outcome}` }), list, 25, (s) => h('li', {},
    h('a', { class: 'item', href: href.item(run.run_id, s.item_id), title: 'Follow this item through the run' }, s.item_id),
    s.details == null ? null : h('code', { class: 'details' }, short(s.details, 240))));
}

function renderFunnel(el, steps, partial) {
  const counted = steps.filter((s) => s.input_count != null || s.output_count != null);
  if (!counted.length) { el.hidden = true; return; }
  el.hidden = false;
  if (counted.length > FUNNEL_MAX || partial) {
    mount(el, h('h2', {}, 'Funnel'), h('p', { class: 'muted' }, `${count(counted.length)}${partial ? '+' : ''} steps with counts: each row of the timeline shows its own in → out and the share kept.`));
    return;
  }
  const max = Math.max(...counted.map((s) => Math.max(s.input_count || 0, s.output_count || 0)), 1);
  mount(el, h('h2', {}, 'Funnel'), h('div', { class: 'funnelrows' }, counted.map((s) => {
    const input = s.input_count ?? s.output_count;
    const out = s.output_count ?? input;
    const dropped = input - out;
    return h('div', { class: 'frow', dataset: { stepName: s.name } },
      h('span', { class: 'fname' }, h('i', { class: `dot type-${s.step_type}` }), s.name),
      h('span', { class: 'fbar' },
        h('span', { class: 'fin', style: { width: `${(input / max) * 100}%` } }),
        h('span', { class: `fout type-${s.step_type}`, style: { width: `${(out / max) * 100}%` } })),
      h('span', { class: 'fnum' }, `${count(s.input_count)} → ${count(s.output_count)}`,
        dropped > 0 ? h('span', { class: 'drop' }, ` −${count(dropped)} (${pct(dropped / input)})`) : null));
  })));
}
