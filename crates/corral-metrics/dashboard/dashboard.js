// corral's live dashboard: polls /api/snapshot every second and redraws.
// Rates and percentiles come from the difference between snapshots, as
// Prometheus' rate() and histogram_quantile() would compute them.
"use strict";

const HISTORY = 120;   // samples kept per pool for the charts (2 minutes)
const WINDOW = 5;      // samples over which req/s and percentiles are taken
const samples = [];    // snapshots, oldest first
const points = {};     // pool -> [{time, accepted_conn, active_processes}], for the charts
let updates = 0;

function quantile(q, bounds, cumulative) {
  const total = cumulative[cumulative.length - 1] || 0;
  if (!total || cumulative.length !== bounds.length + 1) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < cumulative.length; i++) {
    const c = cumulative[i];
    if (c >= rank && c > below) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * Math.min(1, Math.max(0, (rank - below) / (c - below)));
    }
    below = Math.max(below, c);
  }
  return bounds[bounds.length - 1];
}

function delta(now, before) {
  if (!before || now.length !== before.length || now.some((n, i) => n < before[i])) return now;
  return now.map((n, i) => n - before[i]);
}

function poolIn(snapshot, name) {
  return snapshot ? snapshot.pools.find(p => p.name === name) : undefined;
}

function rates(name, back) {
  const now = samples[samples.length - 1];
  const then = samples[Math.max(0, samples.length - 1 - back)];
  const p = poolIn(now, name), o = poolIn(then, name);
  if (!p || !o || now === then) return { rps: null, p50: null, p99: null };
  const secs = now.time - then.time;
  const accepted = p.accepted_conn >= o.accepted_conn ? p.accepted_conn - o.accepted_conn : p.accepted_conn;
  const d = delta(p.durations.cumulative, o.durations.cumulative);
  return {
    rps: secs > 0 ? accepted / secs : null,
    p50: quantile(0.5, now.duration_buckets, d),
    p99: quantile(0.99, now.duration_buckets, d),
  };
}

// The master's own history of the pool (on the first poll) and then one
// point per poll, at most one per second, HISTORY long.
function remember(snapshot) {
  for (const p of snapshot.pools) {
    const list = points[p.name] || (points[p.name] = []);
    for (const h of p.history || []) {
      if (!list.length || h.time > list[list.length - 1].time) list.push(h);
    }
    const last = list[list.length - 1];
    if (!last || snapshot.time - last.time >= 0.95) {
      list.push({ time: snapshot.time, accepted_conn: p.accepted_conn, active_processes: p.active_processes });
    }
    while (list.length > HISTORY) list.shift();
  }
  for (const name of Object.keys(points)) {
    if (!snapshot.pools.some(p => p.name === name)) delete points[name];
  }
}

function series(name, pick) {
  const list = points[name] || [];
  const out = [];
  for (let i = 1; i < list.length; i++) out.push(pick(list[i], list[i - 1], list[i].time - list[i - 1].time));
  return out;
}

const fmt = {
  ms: s => s === null ? "–" : s < 1 ? (s * 1000).toFixed(s < 0.01 ? 1 : 0) + " ms" : s.toFixed(2) + " s",
  rate: r => r === null ? "–" : r < 10 ? r.toFixed(1) : r.toFixed(0),
  bytes: b => {
    if (b === null || b === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB"]; let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(i ? 1 : 0) + " " + u[i];
  },
  ago: t => {
    const s = Math.max(0, Math.round(Date.now() / 1000 - t));
    return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
  },
};

const SVG = "http://www.w3.org/2000/svg";
function spark(values, cls) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 160 28");
  svg.setAttribute("preserveAspectRatio", "none");
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("class", "base");
  base.setAttribute("x1", 0); base.setAttribute("x2", 160);
  base.setAttribute("y1", 27); base.setAttribute("y2", 27);
  svg.appendChild(base);
  if (values.length > 1) {
    const max = Math.max(1, ...values);
    const step = 160 / (HISTORY - 1);
    const x0 = 160 - step * (values.length - 1);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", cls);
    line.setAttribute("points", values.map((v, i) =>
      (x0 + i * step).toFixed(1) + "," + (27 - 25 * v / max).toFixed(1)).join(" "));
    svg.appendChild(line);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = values.length ? "max " + Math.max(...values).toFixed(1) : "no data yet";
  svg.appendChild(title);
  return svg;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (text instanceof Node) td.appendChild(text); else td.textContent = text;
  row.appendChild(td);
  return td;
}

function workersCell(p) {
  const wrap = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  const cap = Math.max(1, p.max_children, p.total_processes);
  for (const [cls, n] of [["busy", p.active_processes], ["idle", p.idle_processes]]) {
    const s = document.createElement("span");
    s.className = cls;
    s.style.width = (100 * n / cap) + "%";
    bar.appendChild(s);
  }
  wrap.appendChild(bar);
  wrap.appendChild(document.createTextNode(p.active_processes + " / " + p.idle_processes + " of " + p.max_children));
  return wrap;
}

function row(p) {
  const tr = document.createElement("tr");
  tr.dataset.pool = p.name;
  const r = rates(p.name, WINDOW);
  cell(tr, p.name, "name");
  cell(tr, p.prototype, "state state-" + p.prototype);
  cell(tr, workersCell(p), "workers");
  cell(tr, p.listen_queue + " (max " + p.max_listen_queue + ")", "queue num");
  cell(tr, fmt.rate(r.rps), "rps num");
  cell(tr, fmt.ms(r.p50), "p50 num");
  cell(tr, fmt.ms(r.p99), "p99 num");
  cell(tr, fmt.bytes(p.cgroup ? p.cgroup.memory_bytes : null), "memory num");
  cell(tr, String(p.slow_requests), "slow-requests num" + (p.slow_requests ? " slow" : ""));
  const oc = p.opcache;
  cell(tr, oc ? (oc.hit_ratio === null ? "–" : (100 * oc.hit_ratio).toFixed(1) + "% hit") + " · " + fmt.bytes(oc.used_memory) : "–", "opcache");
  cell(tr, "g" + p.generation + " · " + p.reloads + (p.last_reload ? " (" + fmt.ago(p.last_reload) + ")" : ""), "reloads");
  cell(tr, spark(series(p.name, (a, b, s) => s > 0 ? Math.max(0, a.accepted_conn - b.accepted_conn) / s : 0), "rate"), "chart-rps");
  cell(tr, spark(series(p.name, a => a.active_processes), "busy"), "chart-busy");
  return tr;
}

function render() {
  const s = samples[samples.length - 1];
  const body = document.querySelector("#pools tbody");
  body.replaceChildren(...s.pools.filter(p => !p.status_of).map(row));
  const up = Math.round(s.time - s.master_started);
  document.getElementById("summary").textContent =
    s.pools.length + " pools · corral " + s.version + " · master " + s.master_pid +
    " · up " + (up < 3600 ? Math.round(up / 60) + " min" : (up / 3600).toFixed(1) + " h") +
    " · " + s.reloads + " reloads";
  const list = document.getElementById("reloads");
  if (s.recent_reloads.length) {
    list.replaceChildren(...s.recent_reloads.slice().reverse().map(e => {
      const li = document.createElement("li");
      li.className = e.ok ? "ok" : "failed";
      li.textContent = new Date(e.time * 1000).toLocaleTimeString() + " — " +
        (e.ok ? (e.pools.length ? "new generation: " + e.pools.join(", ") : "nothing changed") : "refused: " + e.summary);
      return li;
    }));
  }
  const status = document.getElementById("status");
  status.className = "live";
  status.textContent = "live · updated " + new Date(s.time * 1000).toLocaleTimeString();
  document.body.dataset.updates = String(updates);
}

async function poll() {
  try {
    const res = await fetch(updates ? "api/snapshot" : "api/snapshot?history=1", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const snapshot = await res.json();
    remember(snapshot);
    samples.push(snapshot);
    if (samples.length > HISTORY) samples.shift();
    updates++;
    render();
  } catch (e) {
    const status = document.getElementById("status");
    status.className = "stale";
    status.textContent = "no answer from the master (" + e.message + ")";
  }
}

poll();
setInterval(poll, 1000);
