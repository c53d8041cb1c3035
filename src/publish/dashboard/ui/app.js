// pocketses dashboard: keeps the server-rendered page live from the daemon's SSE stream.
// One EventSource on /v1/metrics/stream (the page is one SSE subscriber, nothing polls) and one
// fetch of /v1/history when the page opens. Element ids are the contract with page.rs.
(function () {
  "use strict";

  var SPAN = 3600; // seconds of history on the charts, as the daemon's ring (history.rs)
  var MOUNTS = 4;
  var $ = function (id) { return document.getElementById(id); };

  // ---- formatting (same words as page.rs) ----
  function duration(s) {
    s = Math.max(0, Math.floor(s || 0));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + " d " + h + " h";
    if (h > 0) return h + " h " + m + " min";
    if (m > 0) return m + " min";
    return s + " s";
  }
  function bytes(v) {
    if (v == null) return "";
    var units = ["B", "kB", "MB", "GB"], i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i ? v.toFixed(v < 10 ? 2 : 1) : Math.round(v)) + " " + units[i];
  }
  function stateClass(state) {
    return { OK: "ok", WARN: "warn", CRIT: "crit" }[state] || "unknown";
  }
  var SEVERITY = { OK: 0, WARN: 1, UNKNOWN: 2, CRIT: 3 };

  function setLive(state, text) {
    var el = $("live");
    el.dataset.state = state;
    el.textContent = text;
  }

  // ---- history: columns as uPlot takes them ----
  var hist = { t: [], cpu: [], memory: [], rx: [], tx: [], fs: [] };
  var mounts = [];
  for (var i = 0; i < MOUNTS; i++) hist.fs.push([]);

  // The figures of one snapshot event, computed as history.rs does.
  function pointOf(s) {
    var p = { t: Date.parse(s.timestamp) / 1000, cpu: null, memory: null, rx: null, tx: null, fs: [] };
    if (s.cpu) p.cpu = s.cpu.utilization_percent;
    if (s.memory && s.memory.total_bytes > 0) p.memory = s.memory.used_bytes / s.memory.total_bytes * 100;
    var rated = false, rx = 0, tx = 0;
    ((s.network && s.network.interfaces) || []).forEach(function (n) {
      if (n.name !== "lo" && n.rx_rate && n.tx_rate) {
        rx += n.rx_rate.bytes_per_second; tx += n.tx_rate.bytes_per_second; rated = true;
      }
    });
    if (rated) { p.rx = rx; p.tx = tx; }
    var fss = s.filesystems || [];
    for (var i = 0; i < mounts.length; i++) {
      var f = fss.filter(function (x) { return x.mount_point === mounts[i]; })[0];
      p.fs.push(f && f.used_percent != null ? f.used_percent : null);
    }
    return p;
  }

  function push(p) {
    var n = hist.t.length;
    if (n && p.t <= hist.t[n - 1]) return; // already drawn (the stream starts with the latest)
    hist.t.push(p.t); hist.cpu.push(p.cpu); hist.memory.push(p.memory);
    hist.rx.push(p.rx); hist.tx.push(p.tx);
    for (var i = 0; i < MOUNTS; i++) hist.fs[i].push(i < p.fs.length ? p.fs[i] : null);
    var cut = 0;
    while (cut < hist.t.length && hist.t[cut] < p.t - SPAN) cut++;
    if (cut) {
      ["t", "cpu", "memory", "rx", "tx"].forEach(function (k) { hist[k].splice(0, cut); });
      hist.fs.forEach(function (col) { col.splice(0, cut); });
    }
  }

  // ---- charts ----
  var charts = [];
  var COLORS = ["#2f7ed8", "#d0552f", "#3a9c4a", "#8e5bc2"];

  function chart(id, series, columns, fmt) {
    var fig = $("chart-" + id);
    if (!fig || typeof uPlot === "undefined") return;
    // Axes in the page's own text colour, so that they read in dark mode too.
    var fg = getComputedStyle(document.body).color;
    var grid = { stroke: "rgba(128,128,128,0.25)", width: 1 };
    var opts = {
      width: Math.max(240, fig.clientWidth - 8),
      height: 160,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: fg, grid: grid, ticks: grid }, { stroke: fg, grid: grid, ticks: grid, size: 76, values: function (u, vals) {
        var step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
        return vals.map(function (v) { return fmt(v, step); });
      } }],
      series: [{}].concat(series.map(function (label, i) {
        return { label: label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
                 value: function (u, v) { return v == null ? "–" : fmt(v); } };
      }))
    };
    var u = new uPlot(opts, columns(), fig);
    charts.push({ fig: fig, u: u, columns: columns });
    fig.dataset.points = String(u.data[0].length);
  }

  // A tick step under 1 (a flat line) needs decimals to tell its ticks apart.
  function pct(v, step) {
    if (v == null) return "";
    return v.toFixed(step == null ? 1 : step < 0.1 ? 2 : step < 1 ? 1 : 0) + " %";
  }

  function drawAll() {
    charts.forEach(function (c) {
      c.u.setData(c.columns());
      c.fig.dataset.points = String(c.u.data[0].length);
    });
  }

  function makeCharts() {
    chart("cpu", ["CPU"], function () { return [hist.t, hist.cpu]; }, pct);
    chart("memory", ["memory"], function () { return [hist.t, hist.memory]; }, pct);
    chart("network", ["received", "sent"], function () { return [hist.t, hist.rx, hist.tx]; },
          function (v) { return v == null ? "" : bytes(v) + "/s"; });
    var labels = mounts.length ? mounts : ["(no filesystem)"];
    chart("filesystems", labels, function () {
      return [hist.t].concat(hist.fs.slice(0, labels.length));
    }, pct);
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.u.setSize({ width: Math.max(240, c.fig.clientWidth - 8), height: 160 }); });
    });
  }

  // ---- facts ----
  function onSnapshot(s) {
    if (s.hostname) { $("hostname").textContent = s.hostname; document.title = s.hostname + " · pocketses"; }
    if (s.uptime_seconds != null) $("uptime").textContent = duration(s.uptime_seconds);
  }

  // ---- checks: one `check` event per state change, data = one entry of checks[] ----
  function onCheck(c) {
    var body = $("checks-body"), row = null;
    for (var i = 0; i < body.rows.length; i++) {
      if (body.rows[i].dataset.check === c.check) { row = body.rows[i]; break; }
    }
    if (!row) {
      row = body.insertRow(-1);
      row.dataset.check = c.check;
      for (var k = 0; k < 4; k++) row.insertCell(-1);
      var badge = document.createElement("span");
      row.cells[1].appendChild(badge);
    }
    var cls = stateClass(c.state);
    row.className = cls;
    row.cells[0].textContent = c.check;
    var b = row.cells[1].firstChild;
    b.className = "badge " + cls;
    b.textContent = c.state + (c.flapping ? " (flapping)" : "");
    row.cells[2].textContent = c.value == null ? "–" : (c.value.toFixed(1) + " " + (c.unit || "")).trim();
    row.cells[3].textContent = c.summary || "";
    var none = $("checks-none");
    if (none) none.hidden = true;
    var worst = "OK";
    for (var j = 0; j < body.rows.length; j++) {
      var st = body.rows[j].cells[1].textContent.split(" ")[0];
      if ((SEVERITY[st] || 2) > (SEVERITY[worst] || 0)) worst = st;
    }
    var all = $("checks-state");
    all.className = "badge " + stateClass(worst);
    all.textContent = worst;
  }

  // ---- remodel: the same fold as dashboard::Action::apply ----
  var action = { change: null };
  function onRemodel(e) {
    if (e.change && e.change !== action.change) action = { change: e.change, summary: "", step: "", progress: null, finished: null };
    switch (e.type) {
      case "attached": action.summary = e.summary || ""; action.step = "following (" + e.status + ")"; break;
      case "task": action.step = e.summary + ": " + e.status; action.progress = null; break;
      case "progress":
        action.step = e.label ? e.summary + " (" + e.label + ")" : e.summary;
        action.progress = [e.done || 0, e.total || 0]; break;
      case "waiting": action.step = "waiting for snapd: " + e.reason; break;
      case "maintenance": action.step = e.message; break;
      case "resumed": action.step = "snapd answers again"; break;
      case "finished": action.finished = e.status; action.step = e.err ? e.status + ": " + e.err : e.status; break;
      default: return;
    }
    if (!action.change) return;
    $("action-none") && ($("action-none").hidden = true);
    $("action-detail").hidden = false;
    $("action-summary").textContent = "change " + action.change + ": " + action.summary;
    $("action-status").textContent = action.finished || "in progress";
    $("action-step").textContent = action.step;
    var bar = $("action-progress");
    var pctDone = action.finished === "Done" ? 100
      : action.progress && action.progress[1] > 0 ? Math.floor(Math.min(action.progress[0], action.progress[1]) * 100 / action.progress[1]) : null;
    if (pctDone == null) { bar.removeAttribute("value"); bar.textContent = ""; }
    else { bar.value = pctDone; bar.textContent = pctDone + " %"; }
  }

  // ---- fleet action: the same fold as dashboard::FleetAction::apply ----
  var fleet = { action: null };
  function onFleet(e) {
    var id = e.action == null || e.action === "" ? null : String(e.action);
    if (id == null) return;
    if (id !== fleet.action) fleet = { action: id, stage: "", progress: null, details: [], result: null };
    if (typeof e.stage === "string") fleet.stage = e.stage;
    if (typeof e.progress === "number") fleet.progress = Math.floor(Math.max(0, Math.min(100, e.progress)));
    if (Array.isArray(e.details)) fleet.details = e.details.filter(function (d) { return typeof d === "string"; }).slice(-5);
    if ("result" in e) fleet.result = typeof e.result === "string" ? e.result : null;
    if (fleet.stage === "done") fleet.progress = 100;
    $("fleet-none").hidden = true;
    $("fleet-detail").hidden = false;
    $("fleet-action").textContent = fleet.action;
    var stage = $("fleet-stage");
    stage.textContent = fleet.stage;
    stage.className = "badge " + (fleet.result === "success" ? "ok" : fleet.result ? "crit"
      : fleet.stage === "failed" || fleet.stage === "cancelled" ? "warn" : "unknown");
    $("fleet-result").textContent = fleet.result || "";
    var bar = $("fleet-progress");
    if (fleet.progress == null) { bar.removeAttribute("value"); bar.textContent = ""; }
    else { bar.value = fleet.progress; bar.textContent = fleet.progress + " %"; }
    var list = $("fleet-details");
    while (list.firstChild) list.removeChild(list.firstChild);
    fleet.details.forEach(function (d) {
      var li = document.createElement("li");
      li.textContent = d;
      list.appendChild(li);
    });
  }

  // ---- wiring ----
  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (err) { return null; }
  }

  function start() {
    var pending = []; // snapshot points that arrive before the history does
    var ready = false;
    var es = new EventSource("/v1/metrics/stream");
    es.onopen = function () { setLive("live", "live"); };
    es.onerror = function () { setLive("offline", "reconnecting…"); };
    es.addEventListener("snapshot", function (ev) {
      var s = parse(ev);
      if (!s) return;
      onSnapshot(s);
      if (!ready) { pending.push(s); return; }
      push(pointOf(s));
      drawAll();
    });
    es.addEventListener("check", function (ev) { var c = parse(ev); if (c) onCheck(c); });
    es.addEventListener("remodel", function (ev) { var r = parse(ev); if (r) onRemodel(r); });
    es.addEventListener("fleet", function (ev) { var f = parse(ev); if (f) onFleet(f); });

    fetch("/v1/history", { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .catch(function () { return null; })
      .then(function (h) {
        if (h && h.t) {
          mounts = h.mounts || [];
          hist.t = h.t; hist.cpu = h.cpu; hist.memory = h.memory; hist.rx = h.rx; hist.tx = h.tx;
          for (var i = 0; i < MOUNTS; i++) hist.fs[i] = (h.filesystems && h.filesystems[i]) || h.t.map(function () { return null; });
        }
        ready = true;
        pending.forEach(function (s) { push(pointOf(s)); });
        pending = [];
        makeCharts();
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
