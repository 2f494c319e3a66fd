// Charts over time, drawn as plain SVG (no library, nothing loaded from elsewhere): lines with
// a dot per bucket, or stacked bars, on a shared time axis, with the versions' first runs marked
// as dashed lines. Every dot and bar carries its figure in a <title> (the browser's tooltip) and
// in data attributes, so a test can read what is drawn. Colours come from style.css (`.c0`…).

import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 220;
const PAD = { left: 52, right: 12, top: 18, bottom: 26 };
/** How many colours style.css has (`.c0` … `.c9`). */
export const COLOURS = 10;

/** An SVG element, like `h` (attributes as given; children appended). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** A time label: `12-07 14:00` for hour buckets, `12-07` for days (local time). */
function tickLabel(t, hourly) {
  const d = new Date(t);
  const day = `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  return hourly ? `${day} ${pad2(d.getHours())}:00` : day;
}

/** A tooltip's time: `2026-12-07 14:00`. */
function fullTime(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Round numbers for a y axis from 0 to at least `max`: `[0, step, …]` (whole steps for counts). */
function yTicks(max, whole) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw);
  if (whole) step = Math.max(1, Math.ceil(step));
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(v);
  return ticks;
}

/** The frame every chart shares: axes, grid, version markers; returns the scales. */
function frame({ from, to, bucketMs, yMax, yFormat, markers, whole }) {
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  const y0 = H - PAD.bottom;
  const y1 = PAD.top;
  const span = Math.max(to - from, bucketMs);
  const x = (t) => x0 + ((t - from) / span) * (x1 - x0);
  const ticks = yTicks(yMax, whole);
  const top = ticks[ticks.length - 1];
  const y = (v) => y0 - (v / top) * (y0 - y1);
  const g = s('g', { class: 'frame' });
  for (const v of ticks) {
    g.append(s('line', { class: 'grid', x1: x0, x2: x1, y1: y(v), y2: y(v) }),
      s('text', { class: 'ylabel', x: x0 - 6, y: y(v) + 4, 'text-anchor': 'end' }, yFormat(v)));
  }
  const hourly = bucketMs < 86400e3;
  const n = 6;
  for (let i = 0; i <= n; i += 1) {
    const t = from + (span * i) / n;
    g.append(s('text', { class: 'xlabel', x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === n ? 'end' : 'middle' }, tickLabel(t, hourly)));
  }
  g.append(s('line', { class: 'axis', x1: x0, x2: x1, y1: y0, y2: y0 }));
  for (const m of markers || []) {
    if (m.t < from || m.t > to) continue;
    g.append(s('g', { class: 'marker', 'data-version': m.label },
      s('line', { x1: x(m.t), x2: x(m.t), y1: y1 - 4, y2: y0 }),
      s('text', { x: x(m.t) + 3, y: y1 + 2 }, m.label),
      s('title', {}, `${m.label} from ${fullTime(m.t)}`)));
  }
  return { x, y, g, y0 };
}

/** A legend: a swatch and a name per series, in the series' colours. */
function legend(names) {
  return h('div', { class: 'legend' }, names.map((name, i) =>
    h('span', { class: 'key' }, h('span', { class: `swatch c${i % COLOURS}` }), name)));
}

/**
 * Lines over time. `series`: `[{name, points: [[t_ms, value], …]}]` (a missing value breaks the
 * line); `markers`: `[{t, label}]`; `yFormat` writes a value; `yMax` fixes the top (else the
 * largest value).
 */
export function lineChart({ id, series, from, to, bucketMs, markers, yFormat = String, yMax }) {
  const max = yMax ?? Math.max(0, ...series.flatMap((se) => se.points.map(([, v]) => v ?? 0)));
  const { x, y, g } = frame({ from, to, bucketMs, yMax: max, yFormat, markers });
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-chart': id }, g);
  series.forEach((se, i) => {
    const group = s('g', { class: `series c${i % COLOURS}`, 'data-series': se.name });
    let d = '';
    let pen = 'M';
    for (const [t, v] of se.points) {
      if (v === null || v === undefined) { pen = 'M'; continue; }
      d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = 'L';
      group.append(s('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.6, 'data-t': new Date(t).toISOString(), 'data-v': v },
        s('title', {}, `${se.name} · ${fullTime(t)} · ${yFormat(v)}`)));
    }
    group.prepend(s('path', { d }));
    svg.append(group);
  });
  return h('figure', { class: 'chartbox', id }, svg, legend(series.map((se) => se.name)));
}

/**
 * Stacked bars over time, one bar per bucket. `times`: the buckets' starts (ms); `stacks`:
 * `[{name, values: [v per time]}]`, bottom first; `whole`: the values are counts.
 */
export function barChart({ id, times, stacks, from, to, bucketMs, markers, yFormat = String, yMax, whole }) {
  const totals = times.map((_, i) => stacks.reduce((sum, st) => sum + (st.values[i] || 0), 0));
  const { x, y, g, y0 } = frame({ from, to, bucketMs, yMax: yMax ?? Math.max(0, ...totals), yFormat, markers, whole });
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-chart': id });
  const width = Math.max(1, x(from + bucketMs) - x(from) - 1);
  stacks.forEach((st, k) => {
    const group = s('g', { class: `stack c${k % COLOURS}`, 'data-series': st.name });
    times.forEach((t, i) => {
      const v = st.values[i] || 0;
      if (!v) return;
      const below = stacks.slice(0, k).reduce((sum, o) => sum + (o.values[i] || 0), 0);
      const top = y(below + v);
      group.append(s('rect', { x: x(t).toFixed(1), y: top.toFixed(1), width: width.toFixed(1), height: Math.max(0.5, (below ? y(below) : y0) - top).toFixed(1), 'data-t': new Date(t).toISOString(), 'data-v': v },
        s('title', {}, `${st.name} · ${fullTime(t)} · ${yFormat(v)}`)));
    });
    svg.append(group);
  });
  svg.append(g);
  return h('figure', { class: 'chartbox', id }, svg, legend(stacks.map((st) => st.name)));
}
