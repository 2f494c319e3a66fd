// Diff: two runs side by side, their steps aligned by name (the k-th step called "filter" in one
// with the k-th in the other, in order): counts, rejection reasons and their changes, items
// accepted in one and rejected in the other, and different decisions and scores.

import { h, mount, href, count, ms, pct, score, short, status, stepType, time, title, loading, errorBox } from './dom.js';
import { allRunSteps, listRuns, runStep, runSteps } from './api.js';

const AUTO_OPEN = 8;
const MAX_STEPS = 5000;

/** Renders the diff of runs `a` (baseline) and `b`, or a picker when one is missing. */
export async function diffView(view, ctx) {
  const a = ctx.params.a || '';
  const b = ctx.params.b || '';
  if (!a || !b) return picker(view, ctx, a, b);
  mount(view, loading('Loading both runs…'));
  const [A, B] = await Promise.all([allRunSteps(a, MAX_STEPS), allRunSteps(b, MAX_STEPS)]);
  if (!ctx.alive()) return;
  const pairs = align(A.steps, B.steps);
  const changedPairs = pairs.filter((p) => p.change !== 'same');
  const decisionChanges = pairs.filter((p) => p.sa && p.sb && decisionChanged(p.sa, p.sb));
  const outputSame = JSON.stringify(A.run.output) === JSON.stringify(B.run.output);

  const table = h('div', { class: 'difftable', id: 'diff-steps' },
    h('div', { class: 'drow dhead' },
      h('span', { class: 'dname' }, 'Step'),
      h('span', {}, 'A: in → out'), h('span', {}, 'B: in → out'), h('span', {}, 'Rejected A → B'),
      h('span', { class: 'ddec' }, 'Decision A → B'), h('span', { class: 'dchg' }, '')));
  let opened = 0;
  for (const p of pairs) {
    const row = pairRow(A.run, B.run, p);
    table.appendChild(row.el);
    if (p.change !== 'same' && p.sa && p.sb && opened < AUTO_OPEN) {
      opened += 1;
      row.open();
    }
  }
  mount(view,
    title('Diff', h('span', { class: 'muted' }, 'A is the baseline, B the run compared with it'),
      h('a', { class: 'button', href: href.diff(b, a), id: 'swap' }, '⇄ Swap'),
      h('a', { class: 'button', href: href.diff(a, '') }, 'Pick another B')),
    h('div', { class: 'sidebyside' }, runCard('A', A.run), runCard('B', B.run)),
    h('section', { class: 'card summary', id: 'diff-summary' },
      h('p', {}, h('b', {}, `${count(changedPairs.length)} of ${count(pairs.length)}`), ' aligned steps differ',
        A.truncated || B.truncated ? ` (first ${count(MAX_STEPS)} steps of each run)` : '', '.'),
      decisionChanges.map((p) => h('p', { class: 'decisionchange' }, 'Decision at ', h('b', {}, p.key.name), ': ',
        h('b', { class: 'a' }, p.sa.decision?.selected ?? 'none'), p.sa.decision?.score == null ? '' : ` (${score(p.sa.decision.score)})`, ' → ',
        h('b', { class: 'b' }, p.sb.decision?.selected ?? 'none'), p.sb.decision?.score == null ? '' : ` (${score(p.sb.decision.score)})`)),
      outputSame ? h('p', { class: 'muted' }, 'Same output.') : h('p', { class: 'outputs' }, 'Output: ',
        h('code', { class: 'a' }, short(A.run.output, 140) || '—'), ' → ', h('code', { class: 'b' }, short(B.run.output, 140) || '—'))),
    h('section', { class: 'card' }, h('div', { class: 'sectionhead' }, h('h2', {}, 'Steps, aligned by name'),
      h('span', { class: 'hint' }, 'click a row for reasons and items that changed side')), table));
}

function runCard(label, run) {
  return h('section', { class: `card runcard status-card-${run.status}`, dataset: { side: label, runId: run.run_id } },
    h('div', { class: 'runtitle' }, h('span', { class: `side side-${label}` }, label), status(run.status),
      h('a', { href: href.run(run.run_id), class: 'strong' }, run.pipeline), h('span', { class: 'muted mono' }, run.run_id)),
    run.error ? errorBox('Run failed:', run.error) : null,
    h('dl', { class: 'facts small' },
      h('div', { class: 'fact' }, h('dt', {}, 'Started'), h('dd', {}, time(run.started_at))),
      h('div', { class: 'fact' }, h('dt', {}, 'Duration'), h('dd', {}, ms(run.duration_ms))),
      h('div', { class: 'fact wide' }, h('dt', {}, 'Input'), h('dd', {}, h('code', { class: 'wrap' }, short(run.input, 200) || '—'))),
      h('div', { class: 'fact wide' }, h('dt', {}, 'Output'), h('dd', {}, h('code', { class: 'wrap out' }, short(run.output, 200) || '—')))));
}

/** Pairs up the steps of two runs by (name, occurrence), keeping both orders (longest common subsequence). */
export function align(as, bs) {
  const keyed = (steps) => {
    const seen = new Map();
    return steps.map((s) => {
      const n = (seen.get(s.name) || 0) + 1;
      seen.set(s.name, n);
      return { id: `${s.name}\u0000${n}`, name: s.name, step: s };
    });
  };
  const ka = keyed(as);
  const kb = keyed(bs);
  const n = ka.length;
  const m = kb.length;
  if (n * m > 4e6) return alignByKey(ka, kb);
  const w = m + 1;
  const L = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      L[i * w + j] = ka[i].id === kb[j].id ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
    }
  }
  const pairs = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && ka[i].id === kb[j].id) { pairs.push(pair(ka[i], kb[j])); i++; j++; }
    else if (j >= m || (i < n && L[(i + 1) * w + j] >= L[i * w + j + 1])) { pairs.push(pair(ka[i], null)); i++; }
    else { pairs.push(pair(null, kb[j])); j++; }
  }
  return pairs;
}

/** For very long runs: A's order, each step with B's step of the same key, then B's others. */
function alignByKey(ka, kb) {
  const byId = new Map(kb.map((k) => [k.id, k]));
  const pairs = ka.map((k) => {
    const other = byId.get(k.id) || null;
    byId.delete(k.id);
    return pair(k, other);
  });
  for (const k of byId.values()) pairs.push(pair(null, k));
  return pairs;
}

function pair(ka, kb) {
  const sa = ka?.step || null;
  const sb = kb?.step || null;
  const key = ka || kb;
  let change = 'same';
  if (!sa) change = 'only-b';
  else if (!sb) change = 'only-a';
  else if (stepChanged(sa, sb)) change = 'changed';
  return { key, sa, sb, change };
}

function stepChanged(a, b) {
  return a.input_count !== b.input_count || a.output_count !== b.output_count || a.step_type !== b.step_type
    || JSON.stringify(sorted(a.rejections)) !== JSON.stringify(sorted(b.rejections))
    || decisionChanged(a, b) || (a.error || '') !== (b.error || '');
}

function decisionChanged(a, b) {
  const da = a.decision;
  const db = b.decision;
  if (!da && !db) return false;
  return !da || !db || da.selected !== db.selected || da.score !== db.score;
}

function sorted(o) {
  return Object.keys(o || {}).sort().map((k) => [k, o[k]]);
}

const io = (s) => (s ? `${count(s.input_count)} → ${count(s.output_count)}` : '—');

/** `+232` / `−115`; rejections that grow are red, others stay neutral. */
function delta(a, b, colour = true) {
  if (a == null || b == null || a === b) return null;
  const d = b - a;
  const cls = colour ? (d > 0 ? 'up' : 'down') : 'neutral';
  return h('span', { class: `delta ${cls}` }, `${d > 0 ? '+' : '−'}${count(Math.abs(d))}`);
}

function pairRow(runA, runB, p) {
  const { sa, sb } = p;
  const s = sa || sb;
  const label = { same: 'same', changed: 'changed', 'only-a': 'only in A', 'only-b': 'only in B' }[p.change];
  const dec = (x) => (x?.decision ? [h('b', {}, x.decision.selected), x.decision.score == null ? '' : ` (${score(x.decision.score)})`] : '—');
  const detail = h('div', { class: 'ddetail', hidden: true });
  const row = h('div', { class: `drow change-${p.change}${(sa?.error || sb?.error) ? ' failed' : ''}`, role: 'button', tabindex: '0' },
    h('span', { class: 'dname' }, h('i', { class: `dot type-${s.step_type}` }), p.key.name),
    h('span', { class: 'num' }, io(sa)),
    h('span', { class: 'num' }, io(sb), ' ', delta(sa?.output_count, sb?.output_count, false)),
    h('span', { class: 'num' }, sa && sb ? [pct(sa.rejection_rate), ' → ', pct(sb.rejection_rate)] : pct((sa || sb).rejection_rate)),
    h('span', { class: 'ddec' }, sa && sb && decisionChanged(sa, sb) ? [dec(sa), ' → ', dec(sb)] : dec(s)),
    h('span', { class: 'dchg' }, h('span', { class: `pill chg-${p.change}` }, label)));
  const el = h('div', { class: 'dpair', dataset: { stepName: p.key.name, change: p.change } }, row, detail);
  let loaded = false;
  const open = async (force) => {
    const show = force === true ? true : detail.hidden;
    detail.hidden = !show;
    el.classList.toggle('open', show);
    if (!show || loaded) return;
    loaded = true;
    mount(detail, loading('Loading both steps…'));
    try {
      const [va, vb] = await Promise.all([sa ? runStep(runA.run_id, sa.step_id) : null, sb ? runStep(runB.run_id, sb.step_id) : null]);
      mount(detail, pairDetail(runA, runB, va, vb));
    } catch (e) {
      loaded = false;
      mount(detail, errorBox('Could not load the steps:', e.message));
    }
  };
  row.addEventListener('click', () => open());
  row.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  return { el, open: () => open(true) };
}

/** What each kept sample says about its item: accepted, or rejected for a reason. */
function fates(v) {
  const out = new Map();
  if (!v) return out;
  for (const s of v.acceptances?.samples || []) out.set(s.item_id, { outcome: 'accepted' });
  for (const [reason, r] of Object.entries(v.rejections || {})) {
    for (const s of r.samples) out.set(s.item_id, { outcome: 'rejected', reason });
  }
  return out;
}

function pairDetail(runA, runB, va, vb) {
  const reasons = [...new Set([...Object.keys(va?.rejections || {}), ...Object.keys(vb?.rejections || {})])].sort();
  const fa = fates(va);
  const fb = fates(vb);
  const acceptedThenRejected = [];
  const rejectedThenAccepted = [];
  const otherReason = [];
  for (const [item, x] of fa) {
    const y = fb.get(item);
    if (!y) continue;
    if (x.outcome === 'accepted' && y.outcome === 'rejected') acceptedThenRejected.push([item, y.reason]);
    else if (x.outcome === 'rejected' && y.outcome === 'accepted') rejectedThenAccepted.push([item, x.reason]);
    else if (x.outcome === 'rejected' && x.reason !== y.reason) otherReason.push([item, `${x.reason} → ${y.reason}`]);
  }
  const sampled = (va && va.capture !== 'full') || (vb && vb.capture !== 'full');
  const nothing = !va?.error && !vb?.error && !va?.decision && !vb?.decision && !reasons.length && !fa.size && !fb.size;
  if (nothing) {
    return h('p', { class: 'muted' }, `Only the counts differ: ${io(va)} in A, ${io(vb)} in B; neither step kept reasons, items or a decision.`);
  }
  return h('div', { class: 'pairdetail' },
    va?.error || vb?.error ? h('div', { class: 'errs' },
      va?.error ? errorBox('A failed:', va.error) : null, vb?.error ? errorBox('B failed:', vb.error) : null) : null,
    va?.decision || vb?.decision ? h('div', { class: 'decisions' }, h('h3', {}, 'Decision'),
      h('table', { class: 'grid compact' }, h('tbody', {},
        h('tr', {}, h('th', {}, 'A'), h('td', {}, va?.decision ? h('a', { class: 'item', href: href.item(runA.run_id, va.decision.selected) }, va.decision.selected) : '—'), h('td', { class: 'num' }, score(va?.decision?.score))),
        h('tr', {}, h('th', {}, 'B'), h('td', {}, vb?.decision ? h('a', { class: 'item', href: href.item(runB.run_id, vb.decision.selected) }, vb.decision.selected) : '—'), h('td', { class: 'num' }, score(vb?.decision?.score)))))) : null,
    reasons.length ? h('div', { class: 'reasondiff' }, h('h3', {}, 'Rejections by reason'),
      h('table', { class: 'grid compact reasons' },
        h('thead', {}, h('tr', {}, ['Reason', 'A', 'B', 'Change'].map((t) => h('th', {}, t)))),
        h('tbody', {}, reasons.map((r) => {
          const ca = va?.rejections?.[r]?.count ?? 0;
          const cb = vb?.rejections?.[r]?.count ?? 0;
          return h('tr', { class: 'reason', dataset: { reason: r } }, h('td', { class: 'rname' }, r), h('td', { class: 'num' }, count(ca)), h('td', { class: 'num' }, count(cb)), h('td', { class: 'num' }, delta(ca, cb) || h('span', { class: 'muted' }, '=')));
        })))) : null,
    fa.size || fb.size ? h('div', { class: 'flips' }, h('h3', {}, 'Items that changed side'),
      flipList('Accepted in A, rejected in B', 'a-acc-b-rej', acceptedThenRejected, runB, 'in B: '),
      flipList('Rejected in A, accepted in B', 'a-rej-b-acc', rejectedThenAccepted, runA, 'in A: '),
      otherReason.length ? flipList('Rejected in both, for another reason', 'other-reason', otherReason, runB, '') : null,
      sampled ? h('p', { class: 'muted small' }, 'From the items each step kept: with capture "sample", an item may have changed side unkept.') : null) : null);
}

function flipList(label, cls, items, run, prefix) {
  const shown = items.slice(0, 100);
  return h('div', { class: `flip ${cls}` },
    h('h4', {}, label, ': ', h('span', { class: 'n' }, count(items.length))),
    items.length ? h('ul', { class: 'samples' }, shown.map(([item, why]) => h('li', {},
      h('a', { class: 'item', href: href.item(run.run_id, item) }, item), why ? h('span', { class: 'rname' }, ` ${prefix}${why}`) : null)),
      items.length > shown.length ? h('li', { class: 'muted' }, `… and ${count(items.length - shown.length)} more`) : null) : null);
}

async function picker(view, ctx, a, b) {
  const form = h('form', { class: 'filters', id: 'diff-form' },
    h('label', { class: 'field wide' }, h('span', {}, 'A (baseline) run id'), h('input', { name: 'a', value: a, required: true, autocomplete: 'off' })),
    h('label', { class: 'field wide' }, h('span', {}, 'B run id'), h('input', { name: 'b', value: b, required: true, autocomplete: 'off' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Compare')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = href.diff(form.a.value.trim(), form.b.value.trim());
  });
  const recent = h('div', {}, loading('Loading recent runs…'));
  mount(view, title('Diff', h('span', { class: 'muted' }, 'pick two runs: yesterday’s good one as A, today’s bad one as B')), form,
    h('section', { class: 'card' }, h('h2', {}, 'Recent runs'), recent));
  let pipeline = '';
  if (a) {
    try {
      pipeline = (await runSteps(a, { limit: 1 })).run.pipeline;
    } catch (e) {
      if (ctx.alive()) recent.before(errorBox('Run A:', e.message));
    }
  }
  const page = await listRuns({ pipeline, limit: 30 });
  if (!ctx.alive()) return;
  if (!page.runs.length) { mount(recent, h('p', { class: 'empty' }, 'No runs yet.')); return; }
  mount(recent, h('p', { class: 'muted' }, pipeline ? `Runs of ${pipeline}, newest first.` : 'Newest first.'),
    h('table', { class: 'grid runs' }, h('tbody', {}, page.runs.map((r) => h('tr', { dataset: { runId: r.run_id } },
      h('td', {}, status(r.status)), h('td', {}, r.pipeline), h('td', {}, time(r.started_at)),
      h('td', { class: 'io' }, h('code', {}, short(r.input, 80))),
      h('td', { class: 'io' }, r.error ? h('span', { class: 'bad' }, short(r.error, 80)) : h('code', {}, short(r.output, 80))),
      h('td', { class: 'pickcell' },
        h('button', { type: 'button', onclick: () => { form.a.value = r.run_id; if (form.b.value) form.requestSubmit(); } }, 'as A'),
        h('button', { type: 'button', onclick: () => { form.b.value = r.run_id; if (form.a.value) form.requestSubmit(); } }, 'as B')))))));
}
