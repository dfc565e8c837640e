// Charts as inline SVG, drawn here: no library, nothing fetched.
(function () {
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function tickLabel(ms, step) {
  const d = new Date(ms);
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  if (step >= 86400000) return `${d.getUTCDate()} ${d.toLocaleString("en", { month: "short", timeZone: "UTC" })}`;
  return `${hh}:${mm}`;
}

// Sends as bars, conversions as a line, one small chart per trigger.
function sendsChart(name, sent, conversions, start, step) {
  const W = 300, H = 130, L = 34, R = 8, T = 22, B = 20;
  const n = sent.length;
  const top = niceMax(Math.max(1, ...sent, ...conversions));
  const x = (i) => L + (i * (W - L - R)) / n;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `${name}: sends and conversions` });
  root.append(svg("text", { x: L, y: 14, class: "chart-title" }, name));
  const total = sent.reduce((a, b) => a + b, 0), conv = conversions.reduce((a, b) => a + b, 0);
  root.append(svg("text", { x: W - R, y: 14, class: "chart-total", "text-anchor": "end" },
    `${total.toLocaleString("en")} sent · ${conv.toLocaleString("en")} conv.`));
  for (const v of [0, top / 2, top]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid-line" }));
    root.append(svg("text", { x: L - 4, y: y(v) + 3, class: "axis", "text-anchor": "end" },
      Number.isInteger(v) ? v : v.toFixed(1)));
  }
  const bw = Math.max(1, (W - L - R) / n - 1);
  sent.forEach((v, i) => {
    if (!v) return;
    const bar = svg("rect", { x: x(i), y: y(v), width: bw, height: y(0) - y(v), class: "bar-sent" });
    bar.append(svg("title", {}, `${tickLabel(start + i * step, step)}: ${v} sent, ${conversions[i]} conversions`));
    root.append(bar);
  });
  const points = conversions.map((v, i) => `${x(i) + bw / 2},${y(v)}`).join(" ");
  root.append(svg("polyline", { points, class: "line-conv" }));
  [[0, "start"], [Math.floor(n / 2), "middle"], [n - 1, "end"]].forEach(([i, anchor]) => {
    const at = anchor === "start" ? x(i) : anchor === "end" ? x(i) + bw : x(i) + bw / 2;
    root.append(svg("text", { x: at, y: H - 5, class: "axis", "text-anchor": anchor },
      tickLabel(start + i * step, step)));
  });
  return root;
}

// Uplift per trigger: a point and its 95% interval, against zero.
function upliftChart(rows) {
  const measured = rows.filter((r) => r.uplift !== null && r.ci95);
  if (!measured.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No trigger has both sent and held-out decisions in this period yet " +
      "(set a holdout share to measure uplift).";
    return p;
  }
  const W = 720, row = 26, L = 170, R = 230, T = 24;
  const H = T + measured.length * row + 10;
  let lo = Math.min(0, ...measured.map((r) => r.ci95[0]));
  let hi = Math.max(0, ...measured.map((r) => r.ci95[1]));
  const pad = (hi - lo) * 0.08 || 0.05;
  lo -= pad; hi += pad;
  const x = (v) => L + ((v - lo) * (W - L - R)) / (hi - lo);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart uplift-chart", role: "img",
    "aria-label": "uplift with 95% interval per trigger" });
  root.append(svg("line", { x1: x(0), x2: x(0), y1: T - 8, y2: H - 6, class: "zero-line" }));
  root.append(svg("text", { x: x(0), y: T - 12, class: "axis", "text-anchor": "middle" }, "0"));
  measured.forEach((r, i) => {
    const cy = T + i * row + row / 2;
    const sign = r.uplift > 0 && r.ci95[0] > 0 ? "up" : r.uplift < 0 && r.ci95[1] < 0 ? "down" : "flat";
    root.append(svg("text", { x: L - 10, y: cy + 4, class: "label", "text-anchor": "end" }, r.trigger));
    root.append(svg("line", { x1: x(r.ci95[0]), x2: x(r.ci95[1]), y1: cy, y2: cy, class: `ci ${sign}` }));
    root.append(svg("circle", { cx: x(r.uplift), cy, r: 4.5, class: `dot ${sign}` }));
    root.append(svg("text", { x: W - R + 10, y: cy + 4, class: "label" },
      `${pp(r.uplift)} [${pp(r.ci95[0])}, ${pp(r.ci95[1])}]`));
  });
  return root;
}

function pp(v) {
  const s = (v * 100).toFixed(1);
  return `${v >= 0 ? "+" : ""}${s} pp`;
}

window.KairosCharts = { sendsChart, upliftChart, pp };
})();
