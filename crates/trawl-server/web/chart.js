// Per-second charts as inline SVG (no library): one line per series over a shared time axis.
// A series is {name, first (Unix seconds of values[0]), values: [number per second]}; long
// series are reduced to at most MAX_POINTS points, each the highest second of its bucket, so a
// burst is never averaged away.

import { h, bytes } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const MAX_POINTS = 900;
// Series of at most this many points also get a dot per point.
const MAX_DOTS = 60;
const W = 1000;
const H = 220;
const PAD = { left: 64, right: 12, top: 10, bottom: 26 };

function s(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// Reports' per-line series from a report's periods (GET …/report?format=json): the seconds of
// every period joined per line name.
export function seriesOfReport(periods) {
  const byName = new Map();
  for (const p of periods) {
    for (const line of p.lines) {
      let m = byName.get(line.name);
      if (!m) byName.set(line.name, (m = new Map()));
      line.per_second.forEach((v, i) => m.set(line.observed.first + i, (m.get(line.observed.first + i) || 0) + v));
    }
  }
  const out = [];
  for (const [name, m] of byName) {
    const seconds = [...m.keys()];
    const first = Math.min(...seconds);
    const last = Math.max(...seconds);
    const values = new Array(last - first + 1).fill(0);
    for (const [t, v] of m) values[t - first] = v;
    out.push({ name, first, values });
  }
  return out;
}

export function lineChart(series, { test, unit = "bytes/s" } = {}) {
  if (!series.length || series.every((x) => !x.values.length)) {
    return h("p", { class: "muted", "data-test": test }, "No traffic to chart.");
  }
  let t0 = Math.min(...series.map((x) => x.first));
  let t1 = Math.max(...series.map((x) => x.first + x.values.length - 1));
  // One second only: a second either side, so that it sits in the middle.
  if (t1 === t0) [t0, t1] = [t0 - 1, t1 + 1];
  const span = Math.max(1, t1 - t0);
  let ymax = 1;
  for (const x of series) for (const v of x.values) if (v > ymax) ymax = v;
  ymax = nice(ymax);
  const px = (t) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
  const py = (v) => H - PAD.bottom - (v / ymax) * (H - PAD.top - PAD.bottom);

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "data-test": test || "chart" });
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg.append(s("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: py(v), y2: py(v) }));
    svg.append(s("text", { x: PAD.left - 6, y: py(v) + 4, "text-anchor": "end" }, unit === "bytes/s" ? bytes(v) : String(Math.round(v))));
  }
  svg.append(s("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }));
  svg.append(s("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }));
  const ticks = Math.min(5, span);
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + Math.round((span * i) / ticks);
    svg.append(s("text", { x: px(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" }, clock(t)));
  }
  series.forEach((x, k) => {
    const xy = reduce(x.values).map(([i, v]) => [px(x.first + i), py(v)]);
    const line = s("polyline", { class: `series s${k % 6}`, points: xy.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ") });
    line.append(s("title", {}, x.name));
    svg.append(line);
    // Few seconds: a dot on each, so that a capture of one second still shows.
    if (xy.length <= MAX_DOTS) {
      for (const [a, b] of xy) svg.append(s("circle", { class: `point s${k % 6}`, cx: a.toFixed(1), cy: b.toFixed(1), r: 3 }, s("title", {}, x.name)));
    }
  });
  const legend = h("div", { class: "chart-legend" }, series.map((x, k) => h("span", { class: `k${k % 6}` }, `■ ${x.name}`)), h("span", { class: "muted" }, `${unit}, UTC`));
  return h("div", {}, svg, legend);
}

function reduce(values) {
  if (values.length <= MAX_POINTS) return values.map((v, i) => [i, v]);
  const step = values.length / MAX_POINTS;
  const out = [];
  for (let b = 0; b < MAX_POINTS; b++) {
    const from = Math.floor(b * step);
    const to = Math.min(values.length, Math.floor((b + 1) * step));
    let best = from;
    for (let i = from; i < to; i++) if (values[i] > values[best]) best = i;
    out.push([best, values[best]]);
  }
  return out;
}

function nice(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clock(t) {
  return new Date(t * 1000).toISOString().slice(11, 19);
}
