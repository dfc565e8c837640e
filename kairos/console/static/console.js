// The campaign console: reads /api/*, draws the page, sends changes. No framework, no build.
"use strict";

const { sendsChart, upliftChart, pp } = window.KairosCharts;
const STATE_LABELS = { on: "On", shadow: "Shadow", off: "Off" };
const REASONS = {
  suppressed_consent: "no consent",
  suppressed_cooldown: "cooldown",
  suppressed_quiet_hours: "quiet hours",
  suppressed_frequency_cap: "frequency cap",
  suppressed_priority: "priority",
  disabled: "switched off",
};

const ui = {
  state: null, figures: null, period: "today", range: "24h",
  open: new Set(), pending: [], previewed: null, files: [],
};

// --- helpers ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en"));
const money = (v) => Number(v || 0).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const isAdmin = () => ui.state && ui.state.user.role === "admin";

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw Object.assign(new Error("the console does not answer; is `kairos console` running?"), { field: "" });
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `the console answered ${response.status}`;
    throw Object.assign(new Error(message), { field: (data && data.field) || "", status: response.status });
  }
  return data;
}

function notice(text, kind) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = `notice ${kind || ""}`;
  el.hidden = !text;
  if (text && kind !== "error") setTimeout(() => { if (el.textContent === text) el.hidden = true; }, 5000);
}

function describe(changes) {
  if (!changes.length) return "nothing changed: it already was so";
  return changes.map((c) => `${c.key}: ${c.old} → ${c.new}`).join("; ");
}

// --- header, problems -------------------------------------------------------------------

function drawHeader() {
  const s = ui.state;
  document.getElementById("who").replaceChildren(
    h("span", { class: "muted" }, "config "), h("code", {}, s.config),
    h("span", { class: "sep" }, "·"),
    h("span", {}, "signed in as "), h("strong", { id: "user-name" }, s.user.name),
    h("span", { class: `role ${s.user.role}`, id: "user-role" }, s.user.role),
  );
  document.body.classList.toggle("viewer", !isAdmin());
  const box = document.getElementById("problems");
  box.hidden = !s.problems.length;
  box.replaceChildren(
    h("strong", {}, "The config has problems; the workers keep their last valid version:"),
    h("ul", {}, s.problems.map((p) => h("li", {}, h("code", {}, p)))),
  );
}

// --- triggers table ---------------------------------------------------------------------

function figuresOf(name) {
  const f = ui.figures && ui.figures[ui.period === "today" ? "today" : "week"];
  return (f && f[name]) || null;
}

function switchControl(t) {
  return h("div", { class: "segmented switch", role: "group", "aria-label": `${t.name} state` },
    ["on", "shadow", "off"].map((state) => h("button", {
      type: "button",
      class: `${state}${t.state === state ? " chosen" : ""}`,
      dataset: { state },
      "aria-pressed": t.state === state ? "true" : "false",
      disabled: !isAdmin() || t.state === state,
      title: state === "shadow" ? "decides and records, never sends" : null,
      onclick: () => switchTo(t.name, state),
    }, STATE_LABELS[state])));
}

function suppressedCell(row) {
  if (!row || !Object.keys(row.suppressed || {}).length) return h("td", { class: "muted" }, "–");
  return h("td", { class: "reasons" }, Object.entries(row.suppressed).map(([reason, n]) =>
    h("span", { class: "reason", dataset: { reason } }, `${REASONS[reason] || reason} `, h("b", {}, num(n)))));
}

function upliftCell(row) {
  if (!row || row.uplift === null) return h("td", { class: "num muted", title: "needs sent and held-out decisions" }, "–");
  const [lo, hi] = row.ci95;
  const cls = lo > 0 ? "up" : hi < 0 ? "down" : "flat";
  const bound = (v) => `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}`;
  return h("td", { class: `num uplift ${cls}` }, pp(row.uplift), h("br"), h("small", {}, `[${bound(lo)}, ${bound(hi)}]`));
}

function drawTriggers() {
  const body = document.querySelector("#triggers tbody");
  const rows = [];
  for (const t of ui.state.triggers) {
    const f = figuresOf(t.name);
    rows.push(h("tr", { class: `trigger-row state-${t.state}`, dataset: { trigger: t.name } },
      h("th", { scope: "row" }, h("span", { class: `dot-state ${t.state}` }), t.name),
      h("td", {}, switchControl(t)),
      h("td", { class: "num", dataset: { figure: "decisions" } }, num(f ? f.decisions : 0)),
      h("td", { class: "num", dataset: { figure: "sent" } }, num(f ? f.sent : 0)),
      h("td", { class: "num", dataset: { figure: "held_out" } }, num(f ? f.held_out : 0)),
      suppressedCell(f),
      h("td", { class: "num" }, `${num(f ? f.conversions_sent : 0)} / ${num(f ? f.conversions_held_out : 0)}`),
      h("td", { class: "num" }, `${money(f && f.revenue_sent)} / ${money(f && f.revenue_held_out)}`),
      upliftCell(f),
      h("td", {}, h("button", {
        type: "button", class: "link", "aria-expanded": ui.open.has(t.name) ? "true" : "false",
        dataset: { settings: t.name }, onclick: () => toggleSettings(t.name),
      }, ui.open.has(t.name) ? "Hide settings" : "Settings")),
    ));
    if (ui.open.has(t.name)) rows.push(settingsRow(t));
  }
  keepEdits(body, () => body.replaceChildren(...rows));
}

// Re-drawing must not lose what someone is typing: keep edited inputs and focus.
function keepEdits(body, redraw) {
  const edited = {};
  body.querySelectorAll("input[data-dirty]").forEach((i) => { edited[i.id] = i.value; });
  const focused = document.activeElement && document.activeElement.id;
  const errors = {};
  body.querySelectorAll(".field-error").forEach((e) => { if (e.textContent) errors[e.id] = e.textContent; });
  redraw();
  for (const [id, value] of Object.entries(edited)) {
    const input = document.getElementById(id);
    if (input) { input.value = value; input.dataset.dirty = "1"; }
  }
  for (const [id, text] of Object.entries(errors)) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
    const input = document.getElementById(id.replace(/-error$/, ""));
    if (input) input.classList.add("invalid");
  }
  if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
}

function settingsRow(t) {
  const lines = t.settings.map((s) => {
    const id = `set-${t.name}-${s.key}`;
    return h("tr", { dataset: { key: s.key } },
      h("th", { scope: "row" }, h("label", { for: id }, s.key)),
      h("td", {}, h("input", {
        id, value: s.value, size: Math.min(48, Math.max(8, s.value.length + 2)),
        dataset: { key: s.key, trigger: t.name }, disabled: !isAdmin(),
        "aria-describedby": `${id}-error`,
        oninput: (e) => { e.target.dataset.dirty = "1"; },
        onkeydown: (e) => { if (e.key === "Enter") save(t.name, s.key); },
      })),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "admin-only", disabled: !isAdmin(), dataset: { save: s.key },
          onclick: () => save(t.name, s.key) }, "Save"),
        h("button", { type: "button", class: "secondary", dataset: { preview: s.key },
          onclick: () => addPending(t.name, s.key, document.getElementById(id).value) }, "Preview"),
        s.override !== null ? h("button", { type: "button", class: "secondary admin-only", disabled: !isAdmin(),
          title: "remove the live override: the file's value applies again",
          onclick: () => reset(t.name, s.key) }, "Back to file") : null),
      h("td", { class: "muted" }, s.override !== null ? h("span", { class: "badge" }, "live override") : null,
        ` file ${s.file} · default ${s.default}`),
      h("td", { class: "field-error", id: `${id}-error`, role: "alert", dataset: { errorFor: s.key } }),
    );
  });
  return h("tr", { class: "settings-row", dataset: { settingsFor: t.name } },
    h("td", { colspan: 10 },
      h("table", { class: "settings" }, h("tbody", {}, lines)),
      h("div", { class: "trigger-history" }, h("h4", {}, `Recent changes of ${t.name}`),
        h("div", { id: `history-${t.name}`, class: "muted" }, "…"))));
}

async function toggleSettings(name) {
  if (ui.open.has(name)) ui.open.delete(name); else ui.open.add(name);
  drawTriggers();
  if (ui.open.has(name)) loadTriggerHistory(name);
}

async function loadTriggerHistory(name) {
  const box = document.getElementById(`history-${name}`);
  if (!box) return;
  try {
    const entries = await api(`/api/history?trigger=${encodeURIComponent(name)}&limit=5`);
    box.replaceChildren(entries.length ? h("ul", {}, entries.map((e) => h("li", {},
      `${when(e.at)} ${e.by}: ${e.key.split(".").slice(2).join(".")} ${e.old} → ${e.new}`))) : "no changes recorded");
  } catch (err) { box.textContent = err.message; }
}

// --- changes ----------------------------------------------------------------------------

async function switchTo(name, state) {
  try {
    const r = await api(`/api/triggers/${encodeURIComponent(name)}/state`, { state });
    notice(`${name} is ${state} now: ${describe(r.changes)} (every worker within 2 s)`, "ok");
  } catch (err) { notice(`${name}: ${err.message}`, "error"); }
  await refreshState();
}

async function save(name, key) {
  const id = `set-${name}-${key}`;
  // The table is re-drawn every few seconds: look the elements up again after each wait.
  const field = () => [document.getElementById(id), document.getElementById(`${id}-error`)];
  let [input, error] = field();
  error.textContent = "";
  input.classList.remove("invalid");
  try {
    const r = await api(`/api/triggers/${encodeURIComponent(name)}/set`, { key, value: input.value });
    [input] = field();
    if (input) delete input.dataset.dirty;
    notice(`${describe(r.changes)} (live override; every worker within 2 s)`, "ok");
    await refreshState();
    loadTriggerHistory(name);
  } catch (err) {
    [input, error] = field();
    if (error) error.textContent = err.message;
    if (input) input.classList.add("invalid");
  }
}

async function reset(name, key) {
  try {
    const r = await api(`/api/triggers/${encodeURIComponent(name)}/reset`, { key });
    notice(`${describe(r.changes)} (the file rules again)`, "ok");
    const input = document.getElementById(`set-${name}-${key}`);
    if (input) delete input.dataset.dirty;
  } catch (err) { notice(`${name}: ${err.message}`, "error"); }
  await refreshState();
  loadTriggerHistory(name);
}

// --- figures and charts -----------------------------------------------------------------

function drawFigures() {
  const f = ui.figures;
  if (!f) return;
  const reading = document.getElementById("reading");
  reading.textContent = f.reading.error ? f.reading.error : f.reading.caught_up ? "" : "reading the topics…";
  reading.classList.toggle("error-text", Boolean(f.reading.error));
  const charts = document.getElementById("charts");
  const names = ui.state ? ui.state.triggers.map((t) => t.name) : Object.keys(f.series.triggers);
  const count = f.series.triggers[names[0]] ? f.series.triggers[names[0]].sent.length : 0;
  const empty = new Array(count || 24).fill(0);
  charts.replaceChildren(...names.map((name) => {
    const s = f.series.triggers[name] || { sent: empty, conversions: empty };
    return h("figure", { dataset: { chart: name } }, sendsChart(name, s.sent, s.conversions, f.series.start, f.series.step));
  }));
  const period = ui.period === "today" ? f.today : f.week;
  const rows = names.map((name) => ({ trigger: name, ...(period[name] || { uplift: null, ci95: null }) }));
  document.getElementById("uplift").replaceChildren(upliftChart(rows));
  document.getElementById("uplift-period").textContent = ui.period === "today" ? "today (UTC)" : "last 7 days";
}

// --- preview ----------------------------------------------------------------------------

function fillPreviewSelects() {
  const trigger = document.getElementById("pv-trigger");
  if (!trigger.options.length) {
    for (const t of ui.state.triggers) trigger.append(h("option", { value: t.name }, t.name));
    trigger.addEventListener("change", fillKeys);
    fillKeys();
    const filter = document.getElementById("history-trigger");
    for (const t of ui.state.triggers) filter.append(h("option", { value: t.name }, t.name));
  }
}

function fillKeys() {
  const name = document.getElementById("pv-trigger").value;
  const t = ui.state.triggers.find((x) => x.name === name);
  const keys = ["enabled", "shadow", ...t.settings.map((s) => s.key)];
  document.getElementById("pv-key").replaceChildren(...keys.map((k) => h("option", { value: k }, k)));
}

function addPending(trigger, key, value) {
  ui.pending = ui.pending.filter((p) => !(p.trigger === trigger && p.key === key));
  ui.pending.push({ trigger, key, value });
  ui.previewed = null;
  drawPending();
  document.getElementById("preview-section").scrollIntoView({ behavior: "smooth", block: "start" });
}

function drawPending() {
  const list = document.getElementById("pending");
  list.replaceChildren(...(ui.pending.length ? ui.pending.map((p, i) => h("li", { dataset: { pending: `${p.trigger}.${p.key}` } },
    h("code", {}, `${p.trigger}.${p.key}`), " → ", h("code", {}, p.value), " ",
    h("button", { type: "button", class: "link", onclick: () => { ui.pending.splice(i, 1); ui.previewed = null; drawPending(); } }, "remove")))
    : [h("li", { class: "muted" }, "No change yet: add one above, or press Preview next to a setting.")]));
  document.getElementById("pv-apply").disabled = !isAdmin() || !ui.previewed;
}

async function loadFiles() {
  try {
    const r = await api("/api/events");
    const select = document.getElementById("pv-file");
    const chosen = select.value;
    select.replaceChildren(...(r.files.length ? r.files.map((f) => h("option", { value: f.name },
      `${f.name} (${(f.bytes / 1024).toFixed(0)} KiB)`)) : [h("option", { value: "" }, `none in ${r.folder}`)]));
    if (chosen) select.value = chosen;
  } catch (err) { /* shown when previewing */ }
}

async function runPreview(event) {
  event.preventDefault();
  const error = document.getElementById("pv-run-error");
  const out = document.getElementById("preview-result");
  error.textContent = "";
  const body = { file: document.getElementById("pv-file").value, until: document.getElementById("pv-until").value, changes: ui.pending };
  const button = document.getElementById("pv-run");
  button.disabled = true;
  out.replaceChildren(h("p", { class: "muted" }, "Replaying…"));
  try {
    const r = await api("/api/preview", body);
    ui.previewed = JSON.stringify(ui.pending);
    drawPreview(r);
  } catch (err) {
    error.textContent = err.message;
    out.replaceChildren();
    ui.previewed = null;
  } finally {
    button.disabled = false;
    drawPending();
  }
}

function statuses(counts) {
  return Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s} ${num(n)}`).join(", ");
}

function drawPreview(r) {
  const rows = Object.entries(r.triggers);
  const top = Math.max(1, ...rows.map(([, c]) => Math.max(c.running, c.pending)));
  const bar = (v, cls) => h("span", { class: `pbar ${cls}`, style: null, dataset: { w: String(v / top) } });
  const table = h("table", { class: "grid preview", id: "preview-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Trigger"), h("th", { class: "num" }, "Running config"),
      h("th", { class: "num" }, "With the change"), h("th", { class: "num" }, "Difference"),
      h("th", { class: "num" }, "Customers affected"), h("th", {}, ""), h("th", {}, "With the change, by status"))),
    h("tbody", {}, rows.map(([name, c]) => h("tr", { dataset: { previewTrigger: name }, class: c.difference ? "changed" : "" },
      h("th", { scope: "row" }, name),
      h("td", { class: "num", dataset: { col: "running" } }, num(c.running)),
      h("td", { class: "num", dataset: { col: "pending" } }, num(c.pending)),
      h("td", { class: `num diff ${c.difference > 0 ? "up" : c.difference < 0 ? "down" : ""}`, dataset: { col: "difference" } },
        c.difference > 0 ? `+${num(c.difference)}` : num(c.difference)),
      h("td", { class: "num", dataset: { col: "customers" } }, num(c.customers_changed)),
      h("td", { class: "bars" }, bar(c.running, "running"), bar(c.pending, "pending")),
      h("td", { class: "muted small" }, statuses(c.pending_by_status))))));
  const changes = r.changes.length ? r.changes.map((c) => `${c.key}: ${c.running} → ${c.pending}`).join("; ") : "no change: the running config twice";
  document.getElementById("preview-result").replaceChildren(
    h("p", { id: "preview-summary" }, `${r.file}: ${num(r.events)} events (${num(r.invalid)} invalid), clock to ${r.clock}, ${r.seconds}s. `,
      h("strong", {}, changes)),
    table);
  table.querySelectorAll(".pbar").forEach((b) => { b.style.width = `${Math.round(Number(b.dataset.w) * 120)}px`; });
}

async function applyPending() {
  const error = document.getElementById("pv-run-error");
  error.textContent = "";
  try {
    const r = await api("/api/apply", { changes: ui.pending });
    notice(`${describe(r.changes)} (live; every worker within 2 s)`, "ok");
    ui.pending = [];
    ui.previewed = null;
    drawPending();
    await refreshState();
  } catch (err) { error.textContent = err.message; }
}

// --- history ----------------------------------------------------------------------------

function when(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 19); }

async function refreshHistory() {
  const name = document.getElementById("history-trigger").value;
  const query = name ? `?trigger=${encodeURIComponent(name)}&limit=50` : "?limit=50";
  const entries = await api(`/api/history${query}`);
  document.querySelector("#history tbody").replaceChildren(...(entries.length ? entries.map((e) => h("tr", {},
    h("td", {}, when(e.at)), h("td", { dataset: { col: "by" } }, e.by), h("td", { class: "muted" }, e.source),
    h("td", { dataset: { col: "key" } }, h("code", {}, e.key)), h("td", { dataset: { col: "old" } }, e.old),
    h("td", { dataset: { col: "new" } }, e.new))) : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "no changes recorded"))]));
}

// --- loading ----------------------------------------------------------------------------

async function refreshState() {
  try {
    ui.state = await api("/api/state");
    drawHeader();
    drawTriggers();
    fillPreviewSelects();
    if (document.getElementById("notice").classList.contains("offline")) notice("");
  } catch (err) { notice(err.message, "error offline"); }
}

async function refreshFigures() {
  try {
    ui.figures = await api(`/api/figures?range=${ui.range}`);
    if (ui.state) { drawTriggers(); drawFigures(); }
  } catch (err) { /* the state refresh says what is wrong */ }
}

function chooser(groupId, attr, apply) {
  const group = document.getElementById(groupId);
  group.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    group.querySelectorAll("button").forEach((x) => x.classList.toggle("chosen", x === b));
    apply(b.dataset[attr]);
  });
}

async function start() {
  chooser("period", "period", (p) => { ui.period = p; drawTriggers(); drawFigures(); });
  chooser("range", "range", (r) => { ui.range = r; refreshFigures(); });
  document.getElementById("preview-form").addEventListener("submit", runPreview);
  document.getElementById("pv-apply").addEventListener("click", applyPending);
  document.getElementById("pv-add").addEventListener("click", () => {
    const value = document.getElementById("pv-value").value;
    const error = document.getElementById("pv-error");
    error.textContent = value.trim() ? "" : "give the new value, as written in the config file";
    if (value.trim()) addPending(document.getElementById("pv-trigger").value, document.getElementById("pv-key").value, value);
  });
  document.getElementById("history-trigger").addEventListener("change", refreshHistory);
  await refreshState();
  await Promise.all([refreshFigures(), refreshHistory(), loadFiles()]);
  drawPending();
  document.body.dataset.ready = "1";
  setInterval(refreshFigures, 2000);
  setInterval(() => { refreshState(); refreshHistory().catch(() => {}); }, 3000);
  setInterval(loadFiles, 15000);
}

document.addEventListener("DOMContentLoaded", start);
