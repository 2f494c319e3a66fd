// Item fate: what happened to one item in one run, step by step: accepted, rejected (why) or
// selected, and which sampled steps may have seen it without keeping it.

import { h, mount, href, score, stepType, json, loading, errorBox, short, time } from './dom.js';
import { runSteps, itemFate, itemHistory } from './api.js';
import { runHeader } from './run.js';

const ICON = { accepted: '✓', rejected: '✗', selected: '★', ranked: '#' };

/** "ranked #12 (0.43), cutoff 10 at 0.55: missed by 0.12" for a `ranked` event. */
export function rankLine(e) {
  const r = e.ranked;
  if (!r) return '';
  let line = `ranked #${r.position} (${score(e.score)})`;
  if (r.cutoff != null) line += `, cutoff ${r.cutoff}` + (r.cutoff_score != null ? ` at ${score(r.cutoff_score)}` : '');
  if (r.made_the_cut === false) line += r.margin != null ? `: missed by ${score(-r.margin)}` : ': missed the cut';
  else if (r.made_the_cut === true) line += ': made the cut';
  return line;
}

/** Renders the fate of `item` in the run `runId`. */
export async function itemView(view, ctx, runId, item) {
  mount(view, loading('Loading item…'));
  const [page, fate] = await Promise.all([runSteps(runId, { limit: 1 }), itemFate(runId, item)]);
  if (!ctx.alive()) return;
  const run = page.run;
  const form = h('form', { class: 'inline big', id: 'item-form' },
    h('input', { name: 'item', value: item, 'aria-label': 'item id', autocomplete: 'off', required: true }),
    h('button', { type: 'submit', class: 'primary' }, 'Trace'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = form.item.value.trim();
    if (v) location.hash = href.item(runId, v);
  });
  const events = fate.events;
  const elsewhere = h('section', { class: 'card', id: 'elsewhere' }, h('h2', {}, 'In other runs'), loading('Looking…'));
  mount(view,
    h('nav', { class: 'crumbs' },
      h('a', { href: '#/runs' }, 'Runs'), ' / ',
      h('a', { href: href.runs({ pipeline: run.pipeline }) }, run.pipeline), ' / ',
      h('a', { href: href.run(run.run_id) }, run.run_id), ' / item'),
    runHeader(run, { compact: true }),
    h('section', { class: 'card fate', id: 'fate' },
      h('div', { class: 'sectionhead' }, h('h2', {}, 'Item fate'), form),
      verdict(item, events),
      events.length ? h('ol', { class: 'trail' }, events.map((e) => eventRow(runId, e))) : null,
      fate.sampled_steps.length ? h('p', { class: 'note', id: 'sampled-note' },
        'Not kept by ', fate.sampled_steps.map((n, i) => [i ? ', ' : '', h('b', {}, n)]),
        ': these steps kept only samples, so the item may have passed through them unrecorded (capture "full" keeps every item).') : null),
    elsewhere);
  try {
    const history = await itemHistory(item, { pipeline: run.pipeline, limit: 200 });
    if (!ctx.alive()) return;
    const others = history.events.filter((e) => e.run_id !== runId).slice(0, 50);
    // Newest run first, and within a run in step order.
    const order = new Map();
    for (const e of others) if (!order.has(e.run_id)) order.set(e.run_id, order.size);
    others.sort((x, y) => order.get(x.run_id) - order.get(y.run_id) || x.position - y.position);
    mount(elsewhere, h('h2', {}, 'In other runs'),
      others.length ? h('table', { class: 'grid compact others' },
        h('thead', {}, h('tr', {}, ['Step started', 'Run', 'Step', 'Outcome', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, others.map((e) => h('tr', { class: 'other', dataset: { runId: e.run_id } },
          h('td', {}, time(e.started_at)),
          h('td', { class: 'id' }, h('a', { href: href.item(e.run_id, item) }, e.run_id.length > 13 ? e.run_id.slice(0, 8) + '…' : e.run_id)),
          h('td', {}, `#${e.position} ${e.step_name}`),
          h('td', {}, h('span', { class: `pill outcome outcome-${e.outcome}` }, e.outcome)),
          h('td', {}, e.reason ? h('span', { class: 'rname' }, e.reason) : e.ranked ? rankLine(e) : e.score != null ? `score ${score(e.score)}` : ''))))) :
        h('p', { class: 'muted' }, `No kept event about this item in other ${run.pipeline} runs.`));
  } catch (e) {
    if (ctx.alive()) mount(elsewhere, h('h2', {}, 'In other runs'), errorBox('Could not look:', e.message));
  }
}

function verdict(item, events) {
  const sel = events.find((e) => e.outcome === 'selected');
  const last = events[events.length - 1];
  let cls = 'none';
  let text;
  if (sel) {
    cls = 'selected';
    text = ['★ ', h('b', {}, item), ' was selected by ', h('b', {}, sel.step_name), sel.score == null ? '' : ` with score ${score(sel.score)}`];
  } else if (!last) {
    text = ['No recorded event about ', h('b', {}, item), ' in this run.'];
  } else if (last.outcome === 'ranked' && last.ranked?.made_the_cut === false) {
    cls = 'rejected';
    text = ['✗ ', h('b', {}, item), ' missed the cut of ', h('b', {}, last.step_name), ': ', rankLine(last)];
  } else if (last.outcome === 'rejected') {
    cls = 'rejected';
    text = ['✗ ', h('b', {}, item), ' was rejected by ', h('b', {}, last.step_name), ': ', h('b', {}, last.reason)];
  } else {
    cls = 'accepted';
    text = ['✓ ', h('b', {}, item), ' was last seen accepted by ', h('b', {}, last.step_name), ', and never selected'];
  }
  return h('p', { class: `verdict verdict-${cls}`, id: 'verdict' }, text);
}

function eventRow(runId, e) {
  return h('li', { class: `event outcome-${e.outcome}`, dataset: { step: e.step_name, outcome: e.outcome } },
    h('span', { class: 'mark' }, ICON[e.outcome] || '?'),
    h('div', { class: 'body' },
      h('div', { class: 'line' },
        h('span', { class: 'pos' }, `#${e.position}`),
        h('a', { class: 'stepname', href: href.run(runId, { step: e.step_id }) }, e.step_name),
        stepType(e.step_type),
        h('span', { class: `pill outcome outcome-${e.outcome}` }, e.outcome),
        e.reason ? h('span', { class: 'because' }, 'because ', h('b', { class: 'rname' }, e.reason)) : null,
        e.ranked ? h('span', { class: 'rank' }, rankLine(e)) :
          e.score != null ? h('span', { class: 'score' }, 'score ', h('b', {}, score(e.score))) : null),
      e.details == null ? null : (short(e.details, 200).length < 200 ? h('code', { class: 'details' }, short(e.details, 200)) : json(e.details))));
}

