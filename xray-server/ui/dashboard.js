// A pipeline's dashboard (`#/pipelines/{name}`): over a window, bucket by bucket, its runs and
// failures, each step's rejection rate, the reasons behind each filter's rejections, the score
// of the final pick and how long steps take — with the versions' first runs marked, and a way
// into the Compare view. Everything comes from `GET /pipelines/{name}/stats` (the server's
// rollups), so a month of runs draws as quickly as an hour.

import { h, mount, href, count, pct, ms, score, title, loading, errorBox, stepType } from './dom.js';
import { pipelineStats } from './api.js';
import { lineChart, barChart } from './chart.js';

const WINDOWS = [['1', 'last 24 hours'], ['7', 'last 7 days'], ['30', 'last 30 days']];
const HOUR = 3600e3;
const DAY = 86400e3;

/** The window and bucket the URL asks for (7 days by hour by default; 30 days by day). */
function choice(params) {
  const days = WINDOWS.some(([v]) => v === params.days) ? params.days : '7';
  const bucket = params.bucket === 'hour' || params.bucket === 'day' ? params.bucket : (days === '30' ? 'day' : 'hour');
  return { days, bucket, version: params.version || '' };
}

/** A `<select>` that rewrites one parameter of the dashboard's URL. */
function picker(name, label, options, current, go) {
  const el = h('select', { name, id: `dash-${name}`, 'aria-label': label },
    options.map(([v, text]) => h('option', { value: v, selected: v === current }, text)));
  el.addEventListener('change', () => go({ [name]: el.value }));
  return h('label', { class: 'field' }, label, el);
}

/** Renders the dashboard of `pipeline`. */
export async function dashboardView(view, ctx, pipeline) {
  const c = choice(ctx.params);
  const go = (change) => { location.hash = href.pipeline(pipeline, { ...c, ...change }); };
  const now = Date.now();
  const bucketMs = c.bucket === 'hour' ? HOUR : DAY;
  const from = Math.floor((now - Number(c.days) * DAY) / bucketMs) * bucketMs;
  const body = h('div', {}, loading('Loading the pipeline’s figures…'));
  const head = h('div', { class: 'filters' });
  mount(view,
    h('div', { class: 'crumbs' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' / ', pipeline),
    title(pipeline, h('a', { class: 'button', href: href.runs({ pipeline }) }, 'Runs'),
      h('a', { class: 'button primary', id: 'compare-link', href: href.compare(pipeline, {}) }, 'Compare…')),
    head, body);
  let stats;
  try {
    stats = await pipelineStats(pipeline, { since: new Date(from).toISOString(), bucket: c.bucket, version: c.version });
  } catch (e) {
    if (ctx.alive()) mount(body, errorBox('The server refused:', e.message));
    return;
  }
  if (!ctx.alive()) return;
  const versions = stats.versions.map((v) => v.version);
  mount(head,
    picker('days', 'Window', WINDOWS, c.days, go),
    picker('bucket', 'Bucket', [['hour', 'by hour'], ['day', 'by day']], c.bucket, go),
    picker('version', 'Version', [['', 'all versions'], ...versions.map((v) => [v, v])], c.version, go));
  if (versions.length >= 2) {
    const [a, b] = versions.slice(-2);
    view.querySelector('#compare-link').setAttribute('href', href.compare(pipeline, { a: `version:${a}`, b: `version:${b}` }));
  }
  if (!stats.runs.length) {
    mount(body, h('p', { class: 'empty' }, 'No finished runs of this pipeline in this window.'));
    return;
  }
  const frame = { from, to: now, bucketMs, markers: stats.versions.map((v) => ({ t: Date.parse(v.first_run_at), label: v.version })) };
  mount(body, summary(stats, versions), h('div', { class: 'charts' }, charts(stats, frame)));
}

/** The window's totals: runs, failed, versions. */
function summary(stats, versions) {
  const runs = stats.runs.reduce((n, b) => n + b.runs, 0);
  const failed = stats.runs.reduce((n, b) => n + b.failed, 0);
  return h('div', { class: 'cards', id: 'dash-summary' },
    h('div', { class: 'card stat' }, h('span', { class: 'big', dataset: { figure: 'runs' } }, count(runs)), ' runs'),
    h('div', { class: `card stat${failed ? ' status-card-failed' : ''}` },
      h('span', { class: 'big', dataset: { figure: 'failed' } }, count(failed)), ` failed (${pct(runs ? failed / runs : 0)})`),
    h('div', { class: 'card stat' }, versions.length ? versions.map((v) => h('span', { class: 'pill version' }, v)) : h('span', { class: 'muted' }, 'no version given')));
}

/** Points `[t, value]` of a step's buckets. */
const points = (step, f) => step.buckets.map((b) => [Date.parse(b.start), f(b)]);

/** Every chart the figures allow, each in a card. */
function charts(stats, frame) {
  const card = (heading, note, chart) => h('section', { class: 'card chartcard' }, h('h3', {}, heading), note && h('p', { class: 'muted chartnote' }, note), chart);
  const out = [];
  const times = stats.runs.map((b) => Date.parse(b.start));
  out.push(card('Runs and failures', null, barChart({
    id: 'chart-runs', times, ...frame, whole: true, yFormat: count,
    stacks: [
      { name: 'completed', values: stats.runs.map((b) => b.runs - b.failed) },
      { name: 'failed', values: stats.runs.map((b) => b.failed) },
    ],
  })));
  // Filters, and any step that gave reasons: a select step's "rejection rate" (all but one
  // candidate) would only flatten the lines that matter.
  const rated = stats.steps.filter((st) => st.step_type === 'filter' || st.buckets.some((b) => Object.keys(b.rejections).length));
  if (rated.length) {
    out.push(card('Rejection rate by step', 'Items in that did not come out, per bucket.', lineChart({
      id: 'chart-rejection-rate', ...frame, yMax: 1, yFormat: (v) => pct(v),
      series: rated.map((st) => ({ name: st.step, points: points(st, (b) => b.rejection_rate) })),
    })));
  }
  for (const st of stats.steps) {
    const reasons = [...new Set(st.buckets.flatMap((b) => Object.keys(b.rejections)))].sort();
    if (!reasons.length) continue;
    out.push(card(h('span', {}, st.step, ' ', stepType(st.step_type), ': why items were rejected'), 'Each reason’s share of the step’s input, stacked.', barChart({
      id: `chart-reasons-${st.step}`, times: st.buckets.map((b) => Date.parse(b.start)), ...frame, yFormat: (v) => pct(v),
      stacks: reasons.map((r) => ({ name: r, values: st.buckets.map((b) => (b.input_count ? (b.rejections[r] || 0) / b.input_count : 0)) })),
    })));
  }
  const scored = stats.steps.filter((st) => st.buckets.some((b) => b.score_mean !== null));
  if (scored.length) {
    out.push(card('Score of the pick', 'Mean score of each decision step’s choice.', lineChart({
      id: 'chart-score', ...frame, yFormat: score,
      series: scored.map((st) => ({ name: st.step, points: points(st, (b) => b.score_mean) })),
    })));
  }
  out.push(card('Step duration (p95)', null, lineChart({
    id: 'chart-duration', ...frame, yFormat: ms,
    series: stats.steps.map((st) => ({ name: st.step, points: points(st, (b) => b.duration_ms_p95) })),
  })));
  return out;
}
