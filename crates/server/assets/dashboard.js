// Duet's dashboard: polls /api/status on this instance and on every peer its pipes lead to, keeps
// the last minutes of each series in fixed-size ring buffers (memory stays bounded however long the
// page is open) and draws them as SVG. Plain JavaScript, no build step, no library.
'use strict';

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(200, Number(params.get('interval_ms')) || 1000);
/** The longest window offered; a ring holds this many seconds of samples and no more. */
const MAX_WINDOW_S = 1800;
const RING_SIZE = Math.ceil((MAX_WINDOW_S * 1000) / POLL_MS) + 2;
const COLORS = ['#2f6fdb', '#d9480f', '#2b8a3e', '#7048e8', '#e67700'];

let windowS = Number(document.getElementById('window').value);
document.getElementById('window').addEventListener('change', (e) => {
  windowS = Number(e.target.value);
  views.forEach((v) => v.render());
});

/** A fixed-capacity ring of (time ms, value) samples; the oldest are overwritten. */
class Ring {
  constructor(n) {
    this.t = new Float64Array(n);
    this.v = new Float64Array(n);
    this.n = n;
    this.len = 0;
    this.next = 0;
  }
  push(t, v) {
    this.t[this.next] = t;
    this.v[this.next] = v;
    this.next = (this.next + 1) % this.n;
    this.len = Math.min(this.len + 1, this.n);
  }
  /** Samples newer than `since`, oldest first. */
  since(since) {
    const out = [];
    for (let i = 0; i < this.len; i++) {
      const k = (this.next - this.len + i + this.n) % this.n;
      if (this.t[k] >= since) out.push([this.t[k], this.v[k]]);
    }
    return out;
  }
  last() {
    return this.len ? this.v[(this.next - 1 + this.n) % this.n] : NaN;
  }
  oldest() {
    return this.len ? this.t[(this.next - this.len + this.n) % this.n] : Infinity;
  }
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function fmt(v, unit) {
  if (!Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  if (unit === 'B') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  if (unit === 's') {
    if (v === 0) return '0 s';
    if (abs < 0.001) return `${(v * 1e6).toFixed(0)} µs`;
    if (abs < 1) return `${(v * 1000).toFixed(abs < 0.01 ? 2 : 0)} ms`;
    if (abs < 120) return `${v.toFixed(1)} s`;
    return `${(v / 60).toFixed(1)} min`;
  }
  if (abs >= 1e9) return `${(v / 1e9).toFixed(2)} G`;
  if (abs >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (abs >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(abs < 10 ? 2 : 1);
}

/** The value below which `q` of the observations in per-bucket counts `counts` fall. */
function quantile(bounds, counts, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return NaN;
  const rank = q * total;
  let below = 0;
  let lower = 0;
  for (let i = 0; i < counts.length; i++) {
    const upper = bounds[i];
    if (counts[i] > 0 && below + counts[i] >= rank) {
      if (!Number.isFinite(upper)) return lower;
      return lower + (upper - lower) * ((rank - below) / counts[i]);
    }
    below += counts[i];
    if (Number.isFinite(upper)) lower = upper;
  }
  return lower;
}

/** An SVG line chart of `series` ([{name, ring}]) over the selected window. */
function chart(title, series, unit) {
  const W = 300, H = 110, L = 2, T = 14, B = 12;
  const now = Date.now();
  // Until the page has watched a whole window, the axis spans what it has seen.
  const oldest = Math.min(...series.map((s) => s.ring.oldest()), now - 10 * POLL_MS);
  const from = Math.max(now - windowS * 1000, oldest);
  const data = series.map((s) => s.ring.since(from));
  let seen = 0;
  data.forEach((d) => d.forEach(([, v]) => { if (Number.isFinite(v) && v > seen) seen = v; }));
  const max = seen > 0 ? seen : 1;
  const x = (t) => L + ((t - from) / (now - from)) * (W - L - 2);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  let paths = '';
  data.forEach((d, i) => {
    // A gap (no answer, NaN) breaks the line, so an outage shows as one.
    let dAttr = '';
    let pen = false;
    d.forEach(([t, v]) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      dAttr += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    if (dAttr) paths += `<path d="${dAttr}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"/>`;
  });
  const legend = series.map((s, i) =>
    `<span style="color:${COLORS[i % COLORS.length]}">■ ${esc(s.name)} ${esc(fmt(s.ring.last(), unit))}</span>`).join('');
  const last = series.map((s) => s.ring.last());
  return `<div class="chart" data-title="${esc(title)}" data-max="${seen}" data-points="${data.reduce((n, d) => n + d.length, 0)}" data-last="${esc(last.join(','))}"><div class="title"><span>${esc(title)}</span><span>max ${esc(fmt(max, unit))}</span></div>
    <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">
      <line x1="0" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="#e3e6ec"/>
      <line x1="0" y1="${T}" x2="${W}" y2="${T}" stroke="#f0f1f4" stroke-dasharray="3,3"/>
      ${paths}
      <text x="2" y="${H - 1}" font-size="9" fill="#6b7385">−${esc(fmt((now - from) / 1000, 's'))}</text>
      <text x="${W - 2}" y="${H - 1}" font-size="9" fill="#6b7385" text-anchor="end">now</text>
    </svg><div class="legend">${legend}</div></div>`;
}

/** One instance's card: polls its status, keeps its history, draws it. */
class InstanceView {
  constructor(base, container, isPeer) {
    this.base = base;
    this.isPeer = isPeer;
    this.el = document.createElement('section');
    this.el.className = 'instance';
    container.appendChild(this.el);
    this.rings = new Map();
    this.prev = null;
    this.status = null;
    this.downSince = null;
    this.error = '';
  }
  ring(key) {
    let r = this.rings.get(key);
    if (!r) { r = new Ring(RING_SIZE); this.rings.set(key, r); }
    return r;
  }
  async poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), Math.max(POLL_MS * 2, 2000));
    const t = Date.now();
    try {
      const res = await fetch(`${this.base}api/status`, { cache: 'no-store', signal: ctl.signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.update(await res.json(), t);
      this.downSince = null;
      this.error = '';
    } catch (e) {
      if (this.downSince === null) this.downSince = t;
      this.error = e.name === 'AbortError' ? 'no answer' : String(e.message || e);
      // Gaps in every series of this instance: the outage shows on the charts.
      this.rings.forEach((r) => r.push(t, NaN));
      this.prev = null;
    } finally {
      clearTimeout(timer);
    }
    this.render();
  }
  update(s, t) {
    const p = this.prev;
    const dt = p ? (s.instance.now_ms - p.instance.now_ms) / 1000 : 0;
    const rate = (cur, old) => (p && dt > 0 ? Math.max(0, cur - old) / dt : NaN);
    this.ring('points_local').push(t, rate(s.writes.points_local, p && p.writes.points_local));
    this.ring('points_pipe').push(t, rate(s.writes.points_pipe, p && p.writes.points_pipe));
    this.ring('memtable').push(t, s.storage.memtable_bytes);
    this.ring('frozen').push(t, s.storage.frozen_memtables);
    this.ring('pending').push(t, s.storage.compaction_pending_files);
    this.ring('backpressure').push(t, rate(s.storage.backpressure_seconds, p && p.storage.backpressure_seconds));
    this.ring('cpu').push(t, rate(s.process.cpu_seconds, p && p.process.cpu_seconds) * 100);
    this.ring('rss').push(t, s.process.resident_bytes);
    const seen = new Set(['points_local', 'points_pipe', 'memtable', 'frozen', 'pending', 'backpressure', 'cpu', 'rss']);
    for (const pipe of s.pipes) {
      const old = p && p.pipes.find((x) => x.name === pipe.name && x.creation_time === pipe.creation_time);
      const k = `pipe:${pipe.name}:`;
      this.ring(k + 'backlog').push(t, pipe.remaining_events);
      this.ring(k + 'age').push(t, pipe.backlog_age_seconds);
      this.ring(k + 'rate').push(t, rate(pipe.entries_transferred, old ? old.entries_transferred : NaN));
      this.ring(k + 'bytes').push(t, rate(pipe.bytes_transferred, old ? old.bytes_transferred : NaN));
      // The acknowledgement lag of the entries acknowledged since the last poll (its p99).
      let p99 = NaN;
      if (pipe.lag_buckets && old && old.lag_buckets) {
        const bounds = pipe.lag_buckets.map(([b]) => (b === '+Inf' ? Infinity : b));
        const counts = pipe.lag_buckets.map(([, n], i) => n - (old.lag_buckets[i] ? old.lag_buckets[i][1] : 0));
        p99 = quantile(bounds, counts, 0.99);
      }
      this.ring(k + 'lag').push(t, p99);
      ['backlog', 'age', 'rate', 'bytes', 'lag'].forEach((x) => seen.add(k + x));
    }
    // A dropped pipe's history goes with it.
    for (const key of [...this.rings.keys()]) if (!seen.has(key)) this.rings.delete(key);
    this.prev = s;
    this.status = s;
  }
  render() {
    const s = this.status;
    // For tests and scripts reading the page: which instance this card is, and whether it answers.
    this.el.dataset.base = this.base || 'local';
    this.el.dataset.state = s && this.downSince === null ? 'up' : 'down';
    const self = this.base || location.href.replace(/[?#].*$/, '');
    if (!s) {
      this.el.innerHTML = `<h2><a href="${esc(self)}">${esc(this.base || 'this instance')}</a> <span class="state DOWN">DOWN</span></h2>
        <div class="down">unreachable${this.downSince ? ' since ' + new Date(this.downSince).toLocaleTimeString() : ''}: ${esc(this.error)}</div>`;
      return;
    }
    const i = s.instance;
    const down = this.downSince !== null
      ? `<div class="down">unreachable since ${new Date(this.downSince).toLocaleTimeString()} (${esc(this.error)}); showing its last status</div>` : '';
    const rows = s.pipes.map((p) => `<tr>
        <td><b>${esc(p.name)}</b><div class="sub">→ ${esc(p.sink)}</div></td>
        <td><span class="state ${esc(p.state)}">${esc(p.state)}</span>${p.replaying ? ' <span class="sub">replaying</span>' : ''}</td>
        <td class="num">${esc(fmt(p.remaining_events, ''))}${p.remaining_capped ? '+' : ''}</td>
        <td class="num">${esc(fmt(p.backlog_age_seconds, 's'))}</td>
        <td class="num">${p.remaining_seconds < 0 || (p.exception && p.remaining_events > 0) ? '?' : esc(fmt(p.remaining_seconds, 's'))}</td>
        <td class="num">${esc(fmt(this.ring(`pipe:${p.name}:rate`).last(), ''))}/s</td>
        <td class="num">${esc(fmt(p.failures, ''))}</td>
        <td>${p.peer_dashboard ? `<a href="${esc(p.peer_dashboard)}">peer dashboard</a>` : '<span class="sub">–</span>'}</td>
      </tr>${p.exception ? `<tr><td colspan="8" class="exception">${esc(p.exception)}</td></tr>` : ''}`).join('');
    const pipeCharts = s.pipes.map((p) => {
      const k = `pipe:${p.name}:`;
      return chart(`${p.name}: lag`, [
        { name: 'oldest unsent', ring: this.ring(k + 'age') },
        { name: 'ack p99', ring: this.ring(k + 'lag') },
      ], 's') + chart(`${p.name}: backlog (entries)`, [{ name: 'remaining', ring: this.ring(k + 'backlog') }], '')
        + chart(`${p.name}: sent`, [{ name: 'entries/s', ring: this.ring(k + 'rate') }], '');
    }).join('');
    const st = s.storage;
    this.el.innerHTML = `
      <h2><a href="${esc(self)}">${esc(i.internal_address)}:${esc(i.rpc_port)}</a>
        ${this.isPeer ? '<span class="sub">peer</span>' : ''}</h2>
      <div class="sub">cluster ${esc(i.cluster_id)} · Duet ${esc(i.version)} (${esc(i.commit)}) · ${esc(s.sessions)} sessions · ${esc(s.connections)} connections</div>
      ${down}
      <h3>Pipes</h3>
      ${s.pipes.length ? `<table><tr><th>pipe</th><th>state</th><th>backlog</th><th>oldest unsent</th><th>est. left</th><th>sent</th><th>failures</th><th></th></tr>${rows}</table>`
        : '<div class="sub">no pipes on this instance</div>'}
      <div class="charts">${pipeCharts}</div>
      <h3>Writes and storage</h3>
      <div class="kv">
        <div>memtables <b>${esc(fmt(st.memtable_bytes, 'B'))}</b></div>
        <div>frozen <b>${esc(st.frozen_memtables)}</b></div>
        <div>data files <b>${esc(st.data_files)} · ${esc(fmt(st.data_file_bytes, 'B'))}</b></div>
        <div>change log <b>${esc(fmt(st.wal_bytes, 'B'))}</b></div>
        <div>merge debt <b>${esc(st.compaction_pending_files)} files</b></div>
        <div>unflushed <b>${esc(fmt(st.head_lsn - st.flushed_lsn, ''))} entries</b></div>
        <div>RSS <b>${esc(fmt(s.process.resident_bytes, 'B'))}</b></div>
        <div>open files <b>${esc(s.process.open_fds)}</b></div>
      </div>
      <div class="charts">
        ${chart('points written /s', [{ name: 'local', ring: this.ring('points_local') }, { name: 'from pipes', ring: this.ring('points_pipe') }], '')}
        ${chart('memtables', [{ name: 'bytes', ring: this.ring('memtable') }], 'B')}
        ${chart('held back by flushes (writer-s/s)', [{ name: 'back-pressure', ring: this.ring('backpressure') }], '')}
        ${chart('process', [{ name: 'CPU %', ring: this.ring('cpu') }], '')}
      </div>`;
  }
}

const container = document.getElementById('instances');
const local = new InstanceView('', container, false);
const views = [local];
/** Peers by dashboard URL, found through this instance's pipes. */
const peers = new Map();

async function tick() {
  await local.poll();
  if (local.status) {
    for (const p of local.status.pipes) {
      if (p.peer_dashboard && !peers.has(p.peer_dashboard)) {
        const view = new InstanceView(p.peer_dashboard, container, true);
        peers.set(p.peer_dashboard, view);
        views.push(view);
      }
    }
  }
  await Promise.all([...peers.values()].map((v) => v.poll()));
  const summary = views.map((v) => {
    if (!v.status || v.downSince !== null) return `${v.base || 'this instance'}: unreachable`;
    const pipes = v.status.pipes;
    const running = pipes.filter((p) => p.state === 'RUNNING' && !p.exception).length;
    return `${v.status.instance.internal_address}:${v.status.instance.rpc_port}: ${running}/${pipes.length} pipes healthy`;
  }).join(' · ');
  document.getElementById('summary').textContent = summary;
  document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
  setTimeout(tick, POLL_MS);
}
tick();
