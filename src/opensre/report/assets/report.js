/* opensre report: draws the run embedded in #report-data (see report/html.py for its shape).
   Times in the data are integer microseconds since the run's start; no network, no globals
   besides window.opensreReport (a handle for tests and the console). */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (sel) => document.querySelector(sel);
  // flag bits and classes: Python owns them (report/rows.py) and sends them with the data
  const { running: F_RUNNING, partial: F_PARTIAL, oom: F_OOM, failed: F_FAILED, truncated: F_TRUNCATED } = D.flags;

  // ---- formatting -------------------------------------------------------------
  function fmtBytes(n) {
    if (n === null || n === undefined) return "-";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = Math.abs(n);
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (n < 0 ? "-" : "") + (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + u[i];
  }
  function fmtUs(us) {  // a duration in microseconds
    if (us === null || us === undefined) return "-";
    const s = us / 1e6, a = Math.abs(s);
    if (a < 0.001) return us.toFixed(0) + "µs";
    if (a < 1) return (s * 1000).toFixed(1) + "ms";
    if (a < 120) return s.toFixed(2) + "s";
    if (a < 7200) return Math.floor(s / 60) + "m" + (s % 60).toFixed(s % 1 ? 1 : 0).padStart(s % 1 ? 4 : 2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  const fmtNs = (ns) => (ns === null || ns === undefined ? "-" : fmtUs(ns / 1000));
  const fmtRate = (v) => (v === null || v === undefined ? "-" : fmtBytes(v) + "/s");
  const fmtNum = (v, d) => (v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d || 0 }));
  function fmtTime(ns) {
    if (!ns) return "-";
    const d = new Date(ns / 1e6);
    const p = (x) => String(x).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function objects(cols, rows) {
    return rows.map((r, i) => { const o = { i }; for (let j = 0; j < cols.length; j++) o[cols[j]] = r[j]; return o; });
  }

  // ---- data ------------------------------------------------------------------
  const H = D.header;
  const tasks = objects(D.task_cols, D.tasks);
  const tools = objects(D.tool_cols, D.tools);
  for (const u of tools) u.label = D.tool_labels[u.label];
  const series = D.series.map((s) => (s ? objects(D.series_cols, [s])[0] : null));
  const procs = objects(D.proc_cols, D.procs);
  const toolsOf = tasks.map(() => []);
  for (const u of tools) toolsOf[u.task].push(u);
  const runEndUs = H.wall_ns ? H.wall_ns / 1000 : Math.max(1, ...tasks.map((t) => t.end || t.start));
  const taskEnd = (t) => (t.end === null ? runEndUs : t.end);

  const CLASS_COLORS = D.class_colors, CLASS_LABELS = D.class_labels;
  const colorOf = (t) => CLASS_COLORS[t.kind === "engine" && !t.cls ? "engine" : t.cls] || CLASS_COLORS[""];

  const state = { sel: null };
  const listeners = [];
  function select(i) {
    state.sel = i;
    for (const f of listeners) f(i);
  }

  // ---- header ----------------------------------------------------------------
  function card(k, v, s, cls) {
    return el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v " + (cls || ""), text: v }),
      s ? el("div", { class: "s", text: s }) : null);
  }
  function renderHeader() {
    const h = $("#hdr");
    const title = "opensre run " + H.run_id + (H.name ? " · " + H.name : "");
    h.append(el("h1", { text: title }));
    h.append(el("div", { class: "cmd", text: (H.command || []).join(" ") || "(host-wide collection)" }));
    const host = H.host || {};
    const wall = H.wall_ns;
    const cores = wall ? (H.cpu_ns / wall).toFixed(2) + " cores on average" : "";
    const failedExit = H.exit_signal || (H.exit_code !== null && H.exit_code !== 0);
    const cards = el("div", { class: "cards" });
    cards.append(
      card("status", H.status + ", exit " + H.exit, H.mode, failedExit || H.status !== "finished" ? "bad" : "good"),
      card("host", host.hostname || host.host_id || "?", [host.cpus ? host.cpus + " CPUs" : "", host.mem_bytes ? fmtBytes(host.mem_bytes) : "", host.kernel || ""].filter(Boolean).join(" · ")),
      card("start", fmtTime(H.start_ns), "end " + fmtTime(H.end_ns)),
      card("wall time", fmtNs(wall)),
      card("CPU time", fmtNs(H.cpu_ns), `user ${fmtNs(H.cpu_user_ns)}, system ${fmtNs(H.cpu_system_ns)}; ${cores}`),
      card("peak memory", fmtBytes(H.peak_rss), H.peak_tool ? `${H.peak_tool}, pid ${H.peak_pid} (largest single process)` : ""),
      card("processes", fmtNum(H.processes), H.detected_runs !== null && H.detected_runs !== undefined
        ? `${fmtNum(H.detected_runs)} runs detected in this collection (rows: each run, linked to its own report)`
        : `${fmtNum(H.tasks)} tasks, ${fmtNum(H.tools)} tool invocations`),
      card("storage I/O", "read " + fmtBytes(H.read), "written " + fmtBytes(H.write)),
    );
    if (H.tx || H.rx || H.tcp_connections) cards.append(card("network", "sent " + fmtBytes(H.tx), `received ${fmtBytes(H.rx)}, ${fmtNum(H.tcp_connections)} TCP connections`));
    if (H.runq_ns || H.blocked_ns) cards.append(card("waiting", "run queue " + fmtNs(H.runq_ns), "blocked on I/O " + fmtNs(H.blocked_ns)));
    cards.append(card("cost", costText(H.cost), H.cost ? costDetail(H.cost) : "unknown (tune sets it when prices are configured)"));
    if (H.failed || H.oom_kills) cards.append(card("failures", `${fmtNum(H.failed)} failed processes`, `${fmtNum(H.oom_kills)} OOM kills`, "bad"));
    // data completeness
    const gaps = [];
    if (H.drops) gaps.push(`${fmtNum(H.drops)} events dropped ${JSON.stringify(H.drop_detail)}`);
    if (H.incomplete) gaps.push(`${fmtNum(H.incomplete)} processes still running at the end (no final accounting)`);
    if (H.partial) gaps.push(`${fmtNum(H.partial)} processes observed only partially (started before collection)`);
    for (const [fam, what] of Object.entries(H.probes_missing || {})) gaps.push(`${fam} probes on this kernel: ${what}`);
    if (H.argv_truncated) gaps.push(`${fmtNum(H.argv_truncated)} command lines truncated`);
    if (H.status === "interrupted") gaps.push("the collector was interrupted: the run may be incomplete");
    if (!H.samples) gaps.push("no time series (samples off, or every process lived within one tick)");
    cards.append(card("data completeness", gaps.length ? gaps.length + " gap" + (gaps.length > 1 ? "s" : "") : "complete",
      gaps.length ? gaps.join("; ") : `no drops; every process observed from start to exit; ${fmtNum(H.samples)} samples` +
        (H.interval_ns ? ` every ${fmtNs(H.interval_ns)}` : ""), gaps.length ? "bad" : "good"));
    h.append(cards);
    if (D.notes.length) h.append(el("div", { class: "banner", text: "This is a large run: some lists are capped (" + D.notes.length + " note" + (D.notes.length > 1 ? "s" : "") + " under Notes). Totals always cover everything." }));
    $("#footer").textContent = `generated by opensre ${D.version} at ${fmtTime(D.generated_ns)} · self-contained: no network access · charts by uPlot (MIT)`;
  }
  function costText(c) {
    if (!c) return "unknown";
    if (typeof c.run_usd === "number") return "$" + c.run_usd.toFixed(2);
    for (const k of ["total", "total_cost", "cost", "amount"]) if (typeof c[k] === "number") return c[k].toFixed(2) + (c.currency ? " " + c.currency : "");
    return "see details";
  }
  function costDetail(c) {
    return Object.entries(c).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(4) : v}`).join(", ");
  }

  // ---- timeline (canvas, only the visible rows are drawn) ------------------------
  const RH = 18, LABEL_W = 260;
  const gantt = {
    v0: 0, v1: runEndUs, rows: [], showTools: true,
    axis: $("#gantt-axis"), scroll: $("#gantt-scroll"), cv: $("#gantt"), spacer: $("#gantt-spacer"), tip: $("#gantt-tip"),
  };
  const order = tasks.slice().sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
  function buildRows() {
    const rows = [];
    for (const t of order) {
      rows.push({ t, u: null });
      if (gantt.showTools) for (const u of toolsOf[t.i]) rows.push({ t, u });
    }
    gantt.rows = rows;
    gantt.cv.style.height = gantt.scroll.clientHeight + "px";  // before the first draw the canvas is 150px high
    gantt.rowOfTask = new Map();
    rows.forEach((r, k) => { if (!r.u) gantt.rowOfTask.set(r.t.i, k); });
    gantt.spacer.style.height = Math.max(0, rows.length * RH - gantt.scroll.clientHeight) + "px";
  }
  function sizeCanvas(cv, w, h) {
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
      cv.style.width = w + "px"; cv.style.height = h + "px";
    }
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
  const xOf = (t, W) => LABEL_W + ((t - gantt.v0) / (gantt.v1 - gantt.v0)) * (W - LABEL_W - 10);
  const tOf = (x, W) => gantt.v0 + ((x - LABEL_W) / (W - LABEL_W - 10)) * (gantt.v1 - gantt.v0);
  function niceStep(span, px) {
    const raw = span / Math.max(1, px / 90);
    const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 15e6,
      3e7, 6e7, 12e7, 3e8, 6e8, 9e8, 18e8, 36e8, 72e8, 144e8, 288e8, 864e8];
    return steps.find((s) => s >= raw) || raw;
  }
  function ticks(W) {
    const step = niceStep(gantt.v1 - gantt.v0, W - LABEL_W);
    const out = [];
    for (let t = Math.ceil(gantt.v0 / step) * step; t <= gantt.v1; t += step) out.push(t);
    return out;
  }
  function drawAxis() {
    const W = gantt.axis.clientWidth || gantt.scroll.clientWidth, Hh = 26;
    const ctx = sizeCanvas(gantt.axis, W, Hh);
    ctx.clearRect(0, 0, W, Hh);
    ctx.fillStyle = "#f5f7fa"; ctx.fillRect(0, 0, W, Hh);
    ctx.fillStyle = "#667085"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
    ctx.fillText(`${fmtUs(gantt.v0)} → ${fmtUs(gantt.v1)} of ${fmtUs(runEndUs)}`, 6, 13);
    ctx.strokeStyle = "#b8c0cc";
    for (const t of ticks(W)) {
      const x = Math.round(xOf(t, W)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, 18); ctx.lineTo(x, 26); ctx.stroke();
      ctx.fillText(fmtUs(t), x + 3, 11);
    }
    if (gantt.brush) {
      const [a, b] = gantt.brush;
      ctx.fillStyle = "rgba(59,120,196,.25)"; ctx.fillRect(Math.min(a, b), 0, Math.abs(b - a), Hh);
    }
  }
  function draw() {
    const W = gantt.scroll.clientWidth, Hv = gantt.scroll.clientHeight;
    if (!W || !Hv) return;
    drawAxis();
    const ctx = sizeCanvas(gantt.cv, W, Hv);
    const top = gantt.scroll.scrollTop;
    ctx.clearRect(0, 0, W, Hv);
    ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle";
    const first = Math.max(0, Math.floor(top / RH)), last = Math.min(gantt.rows.length, Math.ceil((top + Hv) / RH));
    ctx.strokeStyle = "#eef1f5";
    for (const t of ticks(W)) { const x = Math.round(xOf(t, W)) + 0.5; ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, Hv); ctx.stroke(); }
    for (let k = first; k < last; k++) {
      const r = gantt.rows[k], y = k * RH - top;
      const t = r.t, sel = state.sel === t.i;
      if (sel) { ctx.fillStyle = "#fff3c4"; ctx.fillRect(0, y, W, RH); }
      else if (!r.u) { ctx.fillStyle = "#f7f9fb"; ctx.fillRect(0, y, W, RH); }
      // bar
      const item = r.u || t, a = item.start, b = item.end === null ? runEndUs : item.end;
      let x0 = xOf(a, W), x1 = xOf(b, W);
      if (x1 >= LABEL_W && x0 <= W) {
        x0 = Math.max(LABEL_W, x0); x1 = Math.min(W, Math.max(x1, x0 + 2));
        const h = r.u ? RH - 8 : RH - 4, yb = y + (RH - h) / 2;
        ctx.globalAlpha = r.u ? 0.55 : 1;
        ctx.fillStyle = colorOf(t); ctx.fillRect(x0, yb, x1 - x0, h);
        ctx.globalAlpha = 1;
        const fl = item.flags;
        if (fl & F_RUNNING) { ctx.fillStyle = "rgba(255,255,255,.6)"; for (let x = x1 - 12; x < x1; x += 4) ctx.fillRect(x, yb, 2, h); }
        if (fl & (F_FAILED | F_OOM)) {
          ctx.strokeStyle = fl & F_OOM ? "#3d0008" : "#c0262d"; ctx.lineWidth = 2; ctx.strokeRect(x0 + 1, yb + 1, x1 - x0 - 2, h - 2);
          ctx.lineWidth = 1; ctx.fillStyle = fl & F_OOM ? "#3d0008" : "#c0262d";
          ctx.font = "bold 11px system-ui, sans-serif"; ctx.fillText(fl & F_OOM ? "OOM" : "✗ " + item.exit, Math.min(x1 + 3, W - 40), y + RH / 2);
          ctx.font = "11px system-ui, sans-serif";
        }
        ctx.strokeStyle = "#eef1f5";
      }
      // label column over the bars
      ctx.fillStyle = sel ? "#fff3c4" : "#fff"; ctx.fillRect(0, y, LABEL_W, RH);
      ctx.fillStyle = r.u ? "#667085" : "#1d2330";
      const label = r.u ? "    └ " + r.u.label : t.id + "  " + t.name;
      ctx.save(); ctx.beginPath(); ctx.rect(0, y, LABEL_W - 6, RH); ctx.clip();
      ctx.fillText(label, 4, y + RH / 2); ctx.restore();
    }
    ctx.strokeStyle = "#d9dee7"; ctx.beginPath(); ctx.moveTo(LABEL_W - 0.5, 0); ctx.lineTo(LABEL_W - 0.5, Hv); ctx.stroke();
    if (!gantt.rows.length) { ctx.fillStyle = "#667085"; ctx.fillText("no tasks (this run was not correlated)", LABEL_W + 10, 20); }
  }
  let drawPending = false;
  function redraw() { if (!drawPending) { drawPending = true; requestAnimationFrame(() => { drawPending = false; draw(); }); } }
  function zoom(factor, center) {
    const span = gantt.v1 - gantt.v0, c = center === undefined ? gantt.v0 + span / 2 : center;
    const ns = Math.min(runEndUs * 1.02, Math.max(50, span * factor));
    const f = (c - gantt.v0) / span;
    setView(c - ns * f, c - ns * f + ns);
  }
  function setView(a, b) {
    const pad = runEndUs * 0.01;
    if (b - a > runEndUs + 2 * pad) { a = -pad; b = runEndUs + pad; }
    if (a < -pad) { b += -pad - a; a = -pad; }
    if (b > runEndUs + pad) { a -= b - runEndUs - pad; b = runEndUs + pad; }
    gantt.v0 = a; gantt.v1 = Math.max(a + 1, b);
    redraw();
  }
  function rowAt(ev) {
    const rect = gantt.cv.getBoundingClientRect();
    const k = Math.floor((ev.clientY - rect.top + gantt.scroll.scrollTop) / RH);
    return { row: gantt.rows[k], x: ev.clientX - rect.left, y: ev.clientY - rect.top };
  }
  function tipText(r) {
    const t = r.t, it = r.u || t;
    const lines = [r.u ? `${r.u.label} (pid ${r.u.pid}) in ${t.id}` : `${t.id} ${t.name}`,
      `${fmtUs(it.start)} → ${it.end === null ? "still running" : fmtUs(it.end)}, ${fmtUs((it.end === null ? runEndUs : it.end) - it.start)}`,
      `CPU ${fmtUs(it.cpu)}, peak RSS ${fmtBytes(it.rss)}, exit ${it.exit}`];
    if (!r.u) lines.push(`${t.procs} processes, class ${CLASS_LABELS[t.cls] || t.cls || "unclassified"}`);
    if (it.flags & F_OOM) lines.push("OOM-killed");
    return lines.join("\n");
  }
  function initGantt() {
    buildRows();
    gantt.scroll.addEventListener("scroll", () => { gantt.tip.hidden = true; redraw(); });
    window.addEventListener("resize", () => { buildRows(); redraw(); });
    $("#zoom-in").addEventListener("click", () => zoom(0.5));
    $("#zoom-out").addEventListener("click", () => zoom(2));
    $("#zoom-reset").addEventListener("click", () => setView(-runEndUs * 0.01, runEndUs * 1.01));
    $("#zoom-fit").addEventListener("click", () => {
      if (state.sel === null) return;
      const t = tasks[state.sel], span = Math.max(taskEnd(t) - t.start, 100);
      setView(t.start - span * 0.05, taskEnd(t) + span * 0.05);
    });
    $("#show-tools").addEventListener("change", (e) => { gantt.showTools = e.target.checked; buildRows(); redraw(); });
    const wheel = (ev, force) => {
      if (!force && !ev.ctrlKey && !ev.altKey) return;
      ev.preventDefault();
      const W = gantt.scroll.clientWidth, rect = gantt.cv.getBoundingClientRect();
      const x = ev.clientX - rect.left;
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, x > LABEL_W ? tOf(x, W) : undefined);
    };
    gantt.cv.addEventListener("wheel", (ev) => wheel(ev, false), { passive: false });
    gantt.axis.addEventListener("wheel", (ev) => wheel(ev, true), { passive: false });
    let drag = null;
    gantt.cv.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, v0: gantt.v0, v1: gantt.v1, moved: false }; });
    window.addEventListener("mousemove", (ev) => {
      if (drag) {
        const dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const W = gantt.scroll.clientWidth, dt = (dx / (W - LABEL_W - 10)) * (drag.v1 - drag.v0);
          setView(drag.v0 - dt, drag.v1 - dt);
        }
      }
      if (gantt.brushing) { gantt.brush[1] = ev.clientX - gantt.axis.getBoundingClientRect().left; drawAxis(); }
    });
    window.addEventListener("mouseup", (ev) => {
      if (gantt.brushing) {
        const [a, b] = gantt.brush, W = gantt.scroll.clientWidth;
        gantt.brushing = false; gantt.brush = null;
        if (Math.abs(b - a) > 5) setView(tOf(Math.max(LABEL_W, Math.min(a, b)), W), tOf(Math.max(a, b), W)); else drawAxis();
      }
      drag = null;
    });
    gantt.cv.addEventListener("click", (ev) => {
      if (drag && drag.moved) return;
      const { row } = rowAt(ev);
      if (row) select(row.t.i);
    });
    gantt.cv.addEventListener("mousemove", (ev) => {
      const { row, x, y } = rowAt(ev);
      if (!row || (drag && drag.moved)) { gantt.tip.hidden = true; return; }
      gantt.tip.textContent = tipText(row);
      gantt.tip.hidden = false;
      gantt.tip.style.left = Math.min(x + 14, gantt.scroll.clientWidth - 300) + "px";
      gantt.tip.style.top = y + 26 + 14 + "px";
    });
    gantt.cv.addEventListener("mouseleave", () => { gantt.tip.hidden = true; });
    gantt.axis.addEventListener("mousedown", (ev) => {
      const x = ev.clientX - gantt.axis.getBoundingClientRect().left;
      gantt.brushing = true; gantt.brush = [x, x];
    });
    listeners.push((i) => {
      if (i !== null && gantt.rowOfTask.has(i)) {  // bring the selected task into view
        const y = gantt.rowOfTask.get(i) * RH, s = gantt.scroll;
        if (y < s.scrollTop || y > s.scrollTop + s.clientHeight - RH) s.scrollTop = Math.max(0, y - s.clientHeight / 3);
      }
      redraw();
    });
    // legend: the classes present
    const present = new Set(tasks.map((t) => (t.kind === "engine" && !t.cls ? "engine" : t.cls)));
    const lg = $("#legend");
    for (const c of Object.keys(CLASS_COLORS)) if (present.has(c)) {
      const sw = el("i"); sw.style.background = CLASS_COLORS[c];
      lg.append(el("span", null, sw, CLASS_LABELS[c] || c.replace(/_/g, " ")));
    }
    lg.append(el("span", { class: "muted", text: "red outline ✗ = failed · dark outline OOM = OOM-killed · striped end = still running · faint bars = tools" }));
    setView(-runEndUs * 0.01, runEndUs * 1.01);
  }

  // ---- resource charts (uPlot) ------------------------------------------------
  const charts = {};
  function chartWidth() { return Math.max(280, Math.floor(($("#charts .chart-grid").clientWidth - 12) / 2) - 10); }
  function makeChart(id, title, xs, series, fmt, xr) {
    const box = document.getElementById(id);
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    box.textContent = "";
    const opts = {
      title, width: chartWidth(), height: 200, scales: { x: { time: false, range: () => xr } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [
        { values: (u, vals) => vals.map((v) => fmtUs(v * 1e6)), size: 34 },
        { values: (u, vals) => vals.map(fmt), size: 84 },
      ],
      series: [{ label: "time", value: (u, v) => (v === null || v === undefined ? "-" : fmtUs(v * 1e6)) }].concat(series.map((s) => ({
        label: s.label, stroke: s.color, width: s.dash ? 1.5 : 1.25, dash: s.dash, fill: s.fill,
        points: { show: xs.length < 3 }, value: (u, v) => (v === null || v === undefined ? "-" : fmt(v)),
      }))),
    };
    charts[id] = new uPlot(opts, [xs].concat(series.map((s) => s.data)), box);
  }
  function showCharts(i) {
    const t = i === null ? null : tasks[i];
    const s = t ? series[i] : D.run_series;
    $("#sel-title").textContent = t ? `${t.id} ${t.name}` : "whole run";
    $("#sel-info").textContent = t
      ? `${t.engine}${t.kind === "engine" ? " (engine's own processes)" : ""} · ${t.procs} processes · wall ${fmtUs(taskEnd(t) - t.start)} · CPU ${fmtUs(t.cpu)} · peak memory ${fmtBytes(t.mem_peak || t.rss)} (largest process ${fmtBytes(t.rss)}) · exit ${t.exit}` +
        ` · class ${CLASS_LABELS[t.cls] || t.cls || "unclassified"}` +
        (t.given_cpus ? ` · given ${t.given_cpus} CPUs` : "") + (t.given_mem ? `, ${fmtBytes(t.given_mem)}` : "")
      : "all processes of the run; click a task in the timeline or the task table to see its own";
    const ids = ["chart-cpu", "chart-rss", "chart-io", "chart-wait"];
    if (!s) {
      for (const id of ids) {
        if (charts[id]) { charts[id].destroy(); delete charts[id]; }
        const box = document.getElementById(id);
        box.textContent = "";
        box.append(el("div", { class: "empty", text: "no samples for this " + (t ? "task" : "run") + " (it lived within one sampling interval, or samples were off)" }));
      }
      return;
    }
    const xs = [];
    for (let k = 0; k < s.n; k++) xs.push((s.start + (k + 0.5) * s.step) / 1e6);
    const xr = [s.start / 1e6, (s.start + s.n * s.step) / 1e6];  // the task's span, also for a single point
    const cst = (v) => (v ? xs.map(() => v) : null);
    // a limit far above the data would flatten it: drawn only within 4x of the peak, else named in the title
    const near = (v, data) => v && Math.max(0, ...data) * 4 >= v;
    const cpu = [{ label: "cores used", data: s.cpu, color: "#3b78c4", fill: "rgba(59,120,196,.12)" }];
    const givenCpus = t ? t.given_cpus : (H.host && H.host.cpus) || null;
    const cpuName = t ? "cores given" : "host CPUs";
    if (near(givenCpus, s.cpu)) cpu.push({ label: cpuName, data: cst(givenCpus), color: "#c0262d", dash: [6, 4] });
    if (!t && s.host_cpu) cpu.push({ label: "host busy", data: s.host_cpu, color: "#777", dash: [2, 3] });
    makeChart("chart-cpu", "CPU (cores)" + (givenCpus && !near(givenCpus, s.cpu) ? `; ${cpuName}: ${givenCpus}` : ""), xs, cpu, (v) => (+v).toFixed(2), xr);
    const rss = [{ label: "RSS", data: s.rss, color: "#1b9aaa", fill: "rgba(27,154,170,.12)" }];
    const lim = t ? t.mem_limit || t.given_mem : null;
    const limName = t && t.mem_limit ? "memory limit" : "memory given";
    if (near(lim, s.rss)) rss.push({ label: limName, data: cst(lim), color: "#c0262d", dash: [6, 4] });
    if (!t && s.host_mem) rss.push({ label: "host memory in use", data: s.host_mem, color: "#777", dash: [2, 3] });
    makeChart("chart-rss", "memory (RSS, summed over processes)" + (lim && !near(lim, s.rss) ? `; ${limName}: ${fmtBytes(lim)}` : ""), xs, rss, fmtBytes, xr);
    makeChart("chart-io", "I/O and network", xs, [
      { label: "disk read", data: s.read, color: "#4f9d3a" }, { label: "disk write", data: s.write, color: "#e8871e" },
      { label: "net sent", data: s.tx, color: "#a05195" }, { label: "net received", data: s.rx, color: "#7f97b2" },
    ], fmtRate, xr);
    makeChart("chart-wait", "waiting (threads on average)", xs, [
      { label: "run queue", data: s.runq, color: "#d62728" }, { label: "I/O wait", data: s.blocked, color: "#8f8a2e" },
    ], (v) => (+v).toFixed(2), xr);
  }
  function initCharts() {
    listeners.push(showCharts);
    $("#sel-run").addEventListener("click", () => select(null));
    window.addEventListener("resize", () => { for (const c of Object.values(charts)) c.setSize({ width: chartWidth(), height: 200 }); });
    showCharts(null);
  }

  // ---- virtual table: only the rows in view are in the DOM -----------------------
  class VTable {
    constructor(root, { columns, rows, height = 400, onClick, rowClass, treeOrder }) {
      this.columns = columns; this.all = rows; this.rows = rows; this.onClick = onClick; this.rowClass = rowClass;
      this.sortCol = null; this.sortDir = 1; this.filter = null; this.treeOrder = !!treeOrder; this.selKey = null;
      this.box = el("div", { class: "vt" }); this.box.style.maxHeight = height + "px";
      this.table = el("table"); this.thead = el("thead"); this.tbody = el("tbody");
      const cg = el("colgroup");
      for (const c of columns) { const col = el("col"); if (c.width) col.style.width = c.width + "px"; cg.append(col); }
      const tr = el("tr");
      columns.forEach((c, j) => {
        const th = el("th", { class: c.num ? "num" : "", title: c.title || c.label + " (click to sort)" }, c.label, el("span", { class: "arrow" }));
        th.addEventListener("click", () => this.sortBy(j));
        tr.append(th);
      });
      this.thead.append(tr);
      this.table.append(cg, this.thead, this.tbody);
      this.box.append(this.table);
      root.append(this.box);
      this.box.addEventListener("scroll", () => this.render());
      this.apply();
    }
    sortBy(j) {
      if (this.sortCol === j) {
        if (this.sortDir === 1) this.sortDir = -1; else { this.sortCol = null; this.sortDir = 1; }  // third click: original order
      } else { this.sortCol = j; this.sortDir = this.columns[j].num ? -1 : 1; }
      this.thead.querySelectorAll("th .arrow").forEach((a, k) => { a.textContent = k === this.sortCol ? (this.sortDir > 0 ? " ▲" : " ▼") : ""; });
      this.apply();
    }
    setFilter(fn) { this.filter = fn; this.apply(); }
    apply() {
      let rows = this.filter ? this.all.filter(this.filter) : this.all.slice();
      if (this.sortCol !== null) {
        const get = this.columns[this.sortCol].get, d = this.sortDir;
        rows.sort((a, b) => {
          const x = get(a), y = get(b);
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * d;
        });
      }
      this.rows = rows;
      this.box.scrollTop = 0;
      this.render();
    }
    get sorted() { return this.sortCol !== null; }
    render() {
      const RHt = 23, top = this.box.scrollTop, Hb = this.box.clientHeight || 400;
      const first = Math.max(0, Math.floor(top / RHt) - 5), last = Math.min(this.rows.length, Math.ceil((top + Hb) / RHt) + 5);
      const frag = document.createDocumentFragment();
      const spacer = (h) => { const tr = el("tr"); const td = el("td", { class: "spacer", colspan: this.columns.length }); td.style.height = h + "px"; tr.append(td); return tr; };
      frag.append(spacer(first * RHt));
      for (let k = first; k < last; k++) {
        const r = this.rows[k];
        const tr = el("tr", { class: (this.onClick ? "clickable " : "") + (this.rowClass ? this.rowClass(r) : "") });
        for (const c of this.columns) {
          const v = c.fmt ? c.fmt(r, this) : c.get(r);
          const td = el("td", { class: (c.num ? "num " : "") + (c.cls || "") });
          if (v instanceof Node) td.append(v); else td.textContent = v === null || v === undefined ? "-" : v;
          if (c.tip) td.title = c.tip(r);
          tr.append(td);
        }
        if (this.onClick) tr.addEventListener("click", () => this.onClick(r));
        frag.append(tr);
      }
      frag.append(spacer((this.rows.length - last) * RHt));
      this.tbody.replaceChildren(frag);
    }
  }
  function badge(cls) {
    const b = el("span", { class: "badge", text: CLASS_LABELS[cls] || (cls || "").replace(/_/g, " ") || "unclassified" });
    b.style.background = CLASS_COLORS[cls] || CLASS_COLORS[""];
    return b;
  }
  const num = (label, get, fmt, width, extra) => Object.assign({ label, get, fmt: fmt ? (r) => fmt(get(r)) : null, num: true, width }, extra || {});
  const txt = (label, get, width, extra) => Object.assign({ label, get, width }, extra || {});

  // ---- task table --------------------------------------------------------------
  function initTaskTable() {
    const cols = [
      txt("task", (t) => t.id, 64), txt("name", (t) => t.name, 300, { tip: (t) => t.name, fmt: (t) => (t.href ? el("a", { href: t.href, text: t.name, title: "this run's own report", onclick: (e) => e.stopPropagation() }) : t.name) }), txt("engine", (t) => t.engine, 90),
      txt("class", (t) => t.cls || "", 120, { fmt: (t) => badge(t.kind === "engine" && !t.cls ? "engine" : t.cls) }),
      num("start", (t) => t.start, fmtUs, 80), num("wall", (t) => taskEnd(t) - t.start, fmtUs, 80),
      num("CPU", (t) => t.cpu, fmtUs, 80), num("cores", (t) => t.cpu / Math.max(1, taskEnd(t) - t.start), (v) => v.toFixed(2), 60),
      num("peak memory", (t) => t.mem_peak || t.rss, fmtBytes, 96, { tip: () => "peak concurrent memory: the largest sum of its live processes' RSS" }),
      num("largest process", (t) => t.rss, fmtBytes, 96), num("read", (t) => t.read, fmtBytes, 84), num("written", (t) => t.write, fmtBytes, 84),
      num("procs", (t) => t.procs, fmtNum, 60), txt("exit", (t) => t.exit, 60, { cls: "exit" }),
    ];
    const table = new VTable($("#task-table"), {
      columns: cols, rows: tasks.slice().sort((a, b) => a.start - b.start), height: 360, onClick: (t) => select(t.i),
      rowClass: (t) => (state.sel === t.i ? "sel " : "") + (t.flags & (F_FAILED | F_OOM) ? "flag-bad" : ""),
    });
    const count = () => { $("#task-count").textContent = `${fmtNum(table.rows.length)} of ${fmtNum(tasks.length)} tasks` + (H.tasks > tasks.length ? ` (the run has ${fmtNum(H.tasks)}; see Notes)` : ""); };
    $("#task-filter").addEventListener("input", (e) => {
      const q = e.target.value.trim().toLowerCase();
      table.setFilter(q ? (t) => `${t.id} ${t.name} ${t.engine} ${t.cls} ${t.exit}`.toLowerCase().includes(q) : null);
      count();
    });
    listeners.push(() => table.render());
    count();
  }

  // ---- process table (tree order until sorted) ---------------------------------
  function initProcTable() {
    const cols = [
      num("pid", (p) => p.pid, null, 70),
      txt("task", (p) => (p.task >= 0 ? tasks[p.task].id : ""), 60),
      txt("tool", (p) => p.tool, 110),
      txt("command", (p) => p.cmd, 420, { fmt: (p, tb) => (tb.sorted ? "" : "  ".repeat(Math.min(p.depth, 40))) + p.cmd, tip: (p) => p.cmd + (p.flags & F_TRUNCATED ? " … (truncated)" : "") }),
      num("start", (p) => p.start, fmtUs, 80), num("duration", (p) => p.dur, (v) => (v === null ? "running" : fmtUs(v)), 80),
      num("CPU", (p) => p.cpu, fmtUs, 80), num("peak RSS", (p) => p.rss, fmtBytes, 86),
      num("read", (p) => p.read, fmtBytes, 84), num("written", (p) => p.write, fmtBytes, 84),
      txt("exit", (p) => p.exit + (p.flags & F_OOM ? " OOM" : "") + (p.flags & F_PARTIAL ? " (partial)" : ""), 90, { cls: "exit" }),
    ];
    const table = new VTable($("#proc-table"), {
      columns: cols, rows: procs, height: 460, treeOrder: true,
      onClick: (p) => { if (p.task >= 0) select(p.task); },
      rowClass: (p) => (state.sel !== null && p.task === state.sel ? "sel " : "") + (p.flags & (F_FAILED | F_OOM) ? "flag-bad" : ""),
    });
    const apply = () => {
      const q = $("#proc-filter").value.trim().toLowerCase();
      const onlySel = $("#proc-selected").checked, onlyBad = $("#proc-failed").checked;
      const f = (p) => (!onlySel || p.task === state.sel) && (!onlyBad || p.flags & (F_FAILED | F_OOM | F_RUNNING)) &&
        (!q || `${p.pid} ${p.tool} ${p.cmd} ${p.exit}`.toLowerCase().includes(q));
      table.setFilter(q || onlySel || onlyBad ? f : null);
      $("#proc-count").textContent = `${fmtNum(table.rows.length)} of ${fmtNum(procs.length)} rows` + (H.processes > procs.length ? ` (the run has ${fmtNum(H.processes)} processes; see Notes)` : "");
    };
    for (const id of ["#proc-filter", "#proc-selected", "#proc-failed"]) $(id).addEventListener("input", apply);
    listeners.push(() => { if ($("#proc-selected").checked) apply(); else table.render(); });
    apply();
  }

  function initToolTotals() {
    const rows = D.tool_totals.map((r) => ({ tool: r[0], n: r[1], cpu: r[2], rss: r[3], read: r[4], write: r[5], bad: r[6] }));
    new VTable($("#tool-table"), {
      columns: [txt("tool", (r) => r.tool, 200), num("processes", (r) => r.n, fmtNum, 90), num("CPU", (r) => r.cpu, fmtNs, 90),
        num("largest peak RSS", (r) => r.rss, fmtBytes, 120), num("read", (r) => r.read, fmtBytes, 90),
        num("written", (r) => r.write, fmtBytes, 90), num("failed/OOM", (r) => r.bad, fmtNum, 90)],
      rows, height: 300,
    });
  }

  // ---- tune ------------------------------------------------------------------
  function plainTable(headers, rows) {
    const t = el("table", { class: "plain" });
    t.append(el("tr", null, ...headers.map((h) => el("th", { class: h.num ? "num" : "", text: h.label || h }))));
    for (const r of rows) t.append(el("tr", null, ...r.map((c, j) => {
      const td = el("td", { class: headers[j].num ? "num" : "" });
      if (c instanceof Node) td.append(c); else td.textContent = c === null || c === undefined ? "-" : c;
      return td;
    })));
    return t;
  }
  const scrollbox = (e) => el("div", { class: "scrollbox" }, e);
  const evidence = (obj) => el("details", null, el("summary", { text: "evidence" }), el("pre", { text: JSON.stringify(obj, null, 2) }));
  function initTune() {
    const T = D.tune || {}, box = $("#tune-body");
    if (!T.available) { box.append(el("p", { class: "muted", id: "tune-unavailable", text: T.message || "tune unavailable" })); return; }
    const idx = new Map(tasks.map((t) => [t.id, t.i]));
    const link = (tid) => (idx.has(tid) ? el("a", { href: "#charts", text: tid, onclick: () => select(idx.get(tid)) }) : tid);
    if (T.cost) box.append(el("h3", { text: "Cost" }), el("pre", { text: JSON.stringify(T.cost, null, 2) }));
    box.append(el("h3", { text: `Recommendations (${T.recommendations.length})` }));
    box.append(T.recommendations.length ? scrollbox(plainTable(["task type", { label: "CPUs", num: true }, { label: "memory", num: true }, "now", "reason", "warnings", ""],
      T.recommendations.map((r) => [r.task_type, r.cpus, fmtBytes(r.memory_bytes),
        `${r.current_cpus ?? "?"} CPUs, ${r.current_memory_bytes ? fmtBytes(r.current_memory_bytes) : "?"}`, r.reason,
        (r.warnings || []).join("; "), evidence(r.evidence)]))) : el("p", { class: "muted", text: "none" }));
    const snip = T.snippets || {};
    if (Object.keys(snip).length) {
      box.append(el("h3", { text: "Config snippets" }));
      const pre = el("pre", { id: "tune-snippet" }), tabs = el("div", { class: "tabs toolbar" });
      const show = (k) => { pre.textContent = snip[k]; tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.textContent === k)); };
      for (const k of Object.keys(snip)) tabs.append(el("button", { type: "button", text: k, onclick: () => show(k) }));
      box.append(tabs, pre);
      show(Object.keys(snip)[0]);
    }
    const fnd = (title, list, total) => {
      box.append(el("h3", { text: `${title} (${total ?? list.length}${total > list.length ? ", " + list.length + " shown" : ""})` }));
      if (!list.length) { box.append(el("p", { class: "muted", text: "none" })); return; }
      box.append(scrollbox(plainTable(["task", "name", "tool", "classification", "message", ""],
        list.map((f) => [link(f.task_id), f.task_name, f.tool || "", badge(f.classification), f.message, evidence(f.evidence)]))));
    };
    fnd("Findings", T.findings || [], T.findings_total);
    fnd("Per-tool findings", T.tool_findings || [], T.tool_findings_total);
    if (T.comparison && T.comparison.length) {
      box.append(el("h3", { text: "Comparison" }));
      box.append(plainTable(["task type", "metric", { label: "before", num: true }, { label: "after", num: true }, { label: "ratio", num: true }, { label: "noise", num: true }, "verdict"],
        T.comparison.map((c) => [c.task_type, c.metric, fmtNum(c.before, 3), fmtNum(c.after, 3), c.ratio === null ? "-" : c.ratio.toFixed(3),
          fmtNum(c.noise, 3), c.regression ? "regression" : c.improvement ? "improvement" : "no change"])));
    }
  }

  // ---- compare ---------------------------------------------------------------
  function initCompare() {
    const C = D.compare;
    if (!C) return;
    $("#compare").hidden = false; $("#nav-compare").hidden = false;
    const box = $("#compare-body");
    const name = (r) => `${r.run_id}${r.name ? " (" + r.name + ")" : ""}`;
    box.append(el("p", null, "A = ", el("b", { text: name(C.a) }), ` started ${fmtTime(C.a.start_ns)}; B = `, el("b", { text: name(C.b) }),
      ` started ${fmtTime(C.b.start_ns)}. Per task type: mean duration, total CPU, largest peak RSS; Δ = B − A.`));
    const delta = (r, m, fmt) => {
      const d = r["d_" + m], q = r["r_" + m];
      if (d === null || d === undefined) return "-";
      const s = el("span", { text: (d > 0 ? "+" : "") + fmt(d) + (q ? ` (${((q - 1) * 100).toFixed(0)}%)` : "") });
      if (q && q > 1.1) s.className = "bad"; else if (q && q < 0.9) s.className = "good";
      return s;
    };
    const v = (side, m, fmt) => (side ? fmt(side[m]) : "-");
    const dur = (ns) => fmtNs(ns), H2 = (l) => ({ label: l, num: true });
    box.append(plainTable(["task type", H2("n A"), H2("n B"), H2("duration A"), H2("duration B"), H2("Δ duration"), H2("CPU A"), H2("CPU B"), H2("Δ CPU"),
      H2("peak RSS A"), H2("peak RSS B"), H2("Δ peak RSS")],
      C.rows.map((r) => [r.type, r.a ? r.a.n : 0, r.b ? r.b.n : 0, v(r.a, "dur", dur), v(r.b, "dur", dur), delta(r, "dur", dur),
        v(r.a, "cpu", fmtNs), v(r.b, "cpu", fmtNs), delta(r, "cpu", fmtNs), v(r.a, "rss", fmtBytes), v(r.b, "rss", fmtBytes), delta(r, "rss", fmtBytes)])));
    box.lastChild.id = "compare-table";
  }

  // ---- events and notes ----------------------------------------------------------
  function initEvents() {
    const box = $("#events-body"), ev = D.events;
    if (!ev.length) { box.append(el("p", { class: "muted", text: "no OOM kills or TCP connections recorded" })); return; }
    const task = (e) => (e.task !== null && e.task !== undefined ? el("a", { href: "#charts", text: tasks[e.task].id, onclick: () => select(e.task) }) : "");
    box.append(plainTable(["time", "kind", "pid", "task", "detail"], ev.map((e) => [fmtUs(e.t), e.kind, e.pid, task(e),
      e.kind === "oom_kill"
        ? `${e.comm || ""} RSS ${fmtBytes(e.rss_bytes)}, memcg limit ${e.memcg_limit_bytes ? fmtBytes(e.memcg_limit_bytes) : "none"}`
        : `${e.direction || ""} ${e.local_addr || ""}:${e.local_port || ""} → ${e.remote_addr || ""}:${e.remote_port || ""}, sent ${fmtBytes(e.bytes_sent)}, received ${fmtBytes(e.bytes_received)}`])));
  }
  function initNotes() {
    const box = $("#notes-body");
    if (!D.notes.length) { box.append(el("p", { class: "muted", text: "nothing was capped: every task, tool invocation and process of the run is in this file." })); return; }
    box.append(el("ul", null, ...D.notes.map((n) => el("li", { text: n }))));
  }

  renderHeader();
  initGantt();
  initCharts();
  initTaskTable();
  initTune();
  initCompare();
  initProcTable();
  initToolTotals();
  initEvents();
  initNotes();
  // the task with the most CPU is a better first view than the whole run when there are tasks
  let best = null;
  for (const t of tasks) if (t.kind === "task" && series[t.i] && (best === null || t.cpu > tasks[best].cpu)) best = t.i;
  if (best !== null) select(best);
  window.opensreReport = { data: D, select, state, rowHeight: RH, labelWidth: LABEL_W, rowOfTask: (i) => gantt.rowOfTask.get(i) };
  document.body.dataset.ready = "1";
})();
