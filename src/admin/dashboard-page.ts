/**
 * The live dashboard at the admin listener's `/`. It holds no data: every two seconds it reads
 * `/api/stats` and turns the running totals into requests/s, p50/p99 latency (from histogram
 * bucket deltas, as Prometheus' histogram_quantile does) and status-class rates, drawn with uPlot.
 * When the admin API wants a token, the page asks for it once and keeps it in sessionStorage; a
 * token the API refuses (401) is forgotten and said to be refused, one whose role may not read the
 * data (403) is said so, and polling waits for the next token meanwhile.
 */

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>sluice</title>
<link rel="stylesheet" href="/assets/uplot.css">
<style>
  :root {
    color-scheme: light dark;
    --fg: #17202e; --muted: #667085; --bg: #f4f6f9; --card: #ffffff; --line: #e3e7ee;
    --accent: #2f6fed; --ok: #12a05c; --warn: #d98a04; --bad: #e0453a; --idle: #98a2b3;
  }
  @media (prefers-color-scheme: dark) {
    :root { --fg: #e7eaf0; --muted: #98a2b3; --bg: #0e1117; --card: #161b24; --line: #252c39; --accent: #5b8dff; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: baseline; padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card); }
  header h1 { margin: 0; font-size: 19px; letter-spacing: .02em; }
  header h1 span { color: var(--accent); }
  .meta { color: var(--muted); font-size: 13px; }
  .live { margin-left: auto; font-size: 13px; color: var(--muted); }
  .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--ok); margin-right: 6px; vertical-align: 1px; }
  .dot.stale { background: var(--bad); }
  main { padding: 18px 24px 32px; display: grid; gap: 16px; max-width: 1500px; margin: 0 auto; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
  .card, section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
  .card { padding: 12px 16px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
  .card .value { font-size: 28px; font-weight: 600; font-variant-numeric: tabular-nums; margin-top: 2px; }
  .card .value small { font-size: 14px; font-weight: 500; color: var(--muted); margin-left: 3px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
  section { padding: 12px 16px 14px; min-width: 0; }
  h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  td, th { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  td.num, th.num { text-align: right; }
  .pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; color: #fff; }
  .pill.up, .pill.ready { background: var(--ok); }
  .pill.backup { background: var(--accent); }
  .pill.draining, .pill.restarting, .pill.starting, .pill.unknown { background: var(--warn); }
  .pill.down, .pill.failed, .pill.crash-loop { background: var(--bad); }
  .two { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 16px; }
  @media (max-width: 1000px) { .two { grid-template-columns: 1fr; } }
  #token { display: none; padding: 16px; }
  #token input { font: inherit; padding: 6px 10px; width: 340px; max-width: 100%; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
  #token button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 0; background: var(--accent); color: #fff; cursor: pointer; }
  #tokenMsg { color: var(--bad); font-weight: 600; margin: 0 0 10px; }
  #tokenMsg:empty { display: none; }
  .uplot { font-family: inherit; }
</style>
</head>
<body>
<header>
  <h1><span>&#9679;</span> sluice</h1>
  <div class="meta" id="meta">connecting…</div>
  <div class="live"><span class="dot" id="dot"></span><span id="updated">—</span></div>
</header>
<main>
  <section id="token">
    <h2>Admin token</h2>
    <p class="meta">This admin API needs a token (viewer or above). It is kept in this tab only.</p>
    <p id="tokenMsg" role="alert"></p>
    <form id="tokenForm"><input id="tokenInput" type="password" placeholder="token" autocomplete="off"> <button>Use token</button></form>
  </section>
  <div class="cards">
    <div class="card"><div class="label">Requests / s</div><div class="value" id="rps">—</div></div>
    <div class="card"><div class="label">p50 latency</div><div class="value" id="p50">—</div></div>
    <div class="card"><div class="label">p99 latency</div><div class="value" id="p99">—</div></div>
    <div class="card"><div class="label">5xx / s</div><div class="value" id="errs">—</div></div>
    <div class="card"><div class="label">Connections</div><div class="value" id="conns">—</div></div>
    <div class="card"><div class="label">Workers</div><div class="value" id="workers">—</div></div>
  </div>
  <div class="charts">
    <section><h2>Requests per second</h2><div id="chartRps"></div></section>
    <section><h2>Latency (ms)</h2><div id="chartLatency"></div></section>
    <section><h2>Status classes per second</h2><div id="chartStatus"></div></section>
  </div>
  <div class="two">
    <section><h2>Workers</h2><table id="workerTable"></table></section>
    <section><h2>Upstream targets</h2><table id="targetTable"></table></section>
  </div>
</main>
<script src="/assets/uplot.js"></script>
<script>
(() => {
  const POLL_MS = 2000, KEEP = 150;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const hist = { t: [], rps: [], p50: [], p99: [], c2: [], c3: [], c4: [], c5: [] };
  let prev = null;

  function quantile(q, now, before) {
    const buckets = now.map(([le, n], i) => [le, n - (before[i] ? before[i][1] : 0)]);
    const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
    if (total <= 0) return null;
    const rank = q * total;
    let lower = 0, below = 0;
    for (const [le, n] of buckets) {
      if (n >= rank) {
        if (le < 0) return lower;
        return lower + (le - lower) * (n === below ? 0 : (rank - below) / (n - below));
      }
      if (le >= 0) lower = le;
      below = n;
    }
    return lower;
  }

  function fmtMs(s) {
    if (s === null || s === undefined) return '—';
    const ms = s * 1000;
    return ms < 10 ? ms.toFixed(2) + '<small>ms</small>' : ms < 1000 ? ms.toFixed(0) + '<small>ms</small>' : (ms / 1000).toFixed(2) + '<small>s</small>';
  }
  function fmtNum(n) { return n >= 10000 ? (n / 1000).toFixed(1) + '<small>k</small>' : n >= 100 ? n.toFixed(0) : n.toFixed(1); }
  function fmtAge(s) { s = Math.round(s); return s < 120 ? s + 's' : s < 7200 ? Math.round(s / 60) + 'm' : Math.round(s / 3600) + 'h'; }

  function chart(el, series, unit) {
    const width = () => Math.max(300, el.clientWidth);
    const opts = {
      width: width(), height: 200, legend: { show: true, live: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [
        { stroke: color('--muted'), grid: { stroke: color('--line') }, ticks: { stroke: color('--line') } },
        { stroke: color('--muted'), grid: { stroke: color('--line') }, ticks: { stroke: color('--line') }, size: 56,
          values: (u, v) => v.map((x) => x + (unit || '')) },
      ],
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, points: { show: false } }))],
    };
    const plot = new uPlot(opts, [[], ...series.map(() => [])], el);
    new ResizeObserver(() => plot.setSize({ width: width(), height: 200 })).observe(el);
    return plot;
  }
  const charts = {
    rps: chart($('chartRps'), [['req/s', color('--accent')]]),
    latency: chart($('chartLatency'), [['p50', color('--ok')], ['p99', color('--warn')]]),
    status: chart($('chartStatus'), [['2xx', color('--ok')], ['3xx', color('--accent')], ['4xx', color('--warn')], ['5xx', color('--bad')]]),
  };

  function push(key, v) { hist[key].push(v); if (hist[key].length > KEEP) hist[key].shift(); }

  function render(s) {
    const st = s.status || {};
    $('meta').textContent = 'v' + st.version + ' · pid ' + st.pid + ' · up ' + fmtAge(st.uptime_s || 0) +
      (st.mode ? ' · ' + st.mode : '') + ' · config ' + ((st.config || {}).hash || '') +
      (st.reloads && st.reloads.last ? ' · last reload ' + (st.reloads.last.ok ? 'ok' : 'refused') : '');
    const workers = st.workers || [];
    const ready = workers.filter((w) => !w.state || w.state === 'ready').length;
    $('workers').innerHTML = ready + '<small>/ ' + workers.length + '</small>';
    $('conns').textContent = s.connections;
    if (prev) {
      const dt = (s.time - prev.time) / 1000;
      const rate = (a, b) => Math.max(0, (a - b) / dt);
      const rps = rate(s.requests, prev.requests);
      const p50 = quantile(0.5, s.latency, prev.latency), p99 = quantile(0.99, s.latency, prev.latency);
      $('rps').innerHTML = fmtNum(rps);
      $('p50').innerHTML = fmtMs(p50);
      $('p99').innerHTML = fmtMs(p99);
      $('errs').innerHTML = fmtNum(rate(s.classes['5xx'], prev.classes['5xx']));
      push('t', s.time / 1000); push('rps', rps);
      push('p50', p50 === null ? null : p50 * 1000); push('p99', p99 === null ? null : p99 * 1000);
      push('c2', rate(s.classes['2xx'], prev.classes['2xx'])); push('c3', rate(s.classes['3xx'], prev.classes['3xx']));
      push('c4', rate(s.classes['4xx'], prev.classes['4xx'])); push('c5', rate(s.classes['5xx'], prev.classes['5xx']));
      charts.rps.setData([hist.t, hist.rps]);
      charts.latency.setData([hist.t, hist.p50, hist.p99]);
      charts.status.setData([hist.t, hist.c2, hist.c3, hist.c4, hist.c5]);
    }
    prev = s;
    $('workerTable').innerHTML = '<tr><th>slot</th><th>pid</th><th>state</th><th class="num">uptime</th><th class="num">restarts</th><th class="num">requests</th><th class="num">conns</th></tr>' +
      workers.map((w, i) => '<tr><td>' + esc(w.slot ?? i) + '</td><td>' + esc(w.pid ?? '—') + '</td><td><span class="pill ' + esc(w.state || 'ready') + '">' + esc(w.state || 'ready') +
        '</span></td><td class="num">' + fmtAge(w.uptime_s || 0) + '</td><td class="num">' + esc(w.restarts ?? 0) + '</td><td class="num">' + esc(w.requests ?? '—') +
        '</td><td class="num">' + esc(w.connections ?? '—') + '</td></tr>').join('');
    const rows = (st.upstreams || []).flatMap((u) => (u.targets || []).map((t) =>
      '<tr><td>' + esc(u.name) + '</td><td>' + esc(t.target) + '</td><td><span class="pill ' + esc(t.state) + '">' + esc(t.state) + '</span></td><td>' + esc(t.health ?? '') +
      '</td><td class="num">' + esc(t.weight ?? '') + '</td><td class="num">' + esc(t.inflight ?? 0) + '</td><td class="num">' + esc(t.fails ?? 0) + '</td></tr>'));
    $('targetTable').innerHTML = '<tr><th>upstream</th><th>target</th><th>state</th><th>health</th><th class="num">weight</th><th class="num">in flight</th><th class="num">fails</th></tr>' +
      (rows.length ? rows.join('') : '<tr><td colspan="7" class="meta">no upstreams</td></tr>');
    $('updated').textContent = new Date(s.time).toLocaleTimeString();
    $('dot').className = 'dot';
  }

  // True while the API wants a token this page does not have: polling waits for one to be typed,
  // rather than send a refused token (or none) every two seconds, each a 401 in the console.
  let waiting = false;

  // Shows the token form with why it is shown ('' for the first ask), and stops polling.
  function askToken(status, message) {
    waiting = true;
    $('token').style.display = 'block';
    $('tokenMsg').textContent = message;
    $('meta').textContent = status;
    $('dot').className = 'dot stale';
    $('updated').textContent = '—';
    if (message) { $('tokenInput').value = ''; $('tokenInput').focus(); }
  }

  // The detail of a problem answer, when there is one.
  async function detailOf(res) {
    try { const doc = await res.json(); return doc && doc.detail ? ': ' + doc.detail : ''; } catch (e) { return ''; }
  }

  async function poll() {
    if (waiting) return;
    try {
      const token = sessionStorage.getItem('sluice-token');
      const res = await fetch('/api/stats', { cache: 'no-store', headers: token ? { authorization: 'Bearer ' + token } : {} });
      // A refused token is forgotten: kept, it went out with every poll and came back 401 each time.
      if (res.status === 401) {
        sessionStorage.removeItem('sluice-token');
        if (token) askToken('token refused', 'The token was refused (401): this admin API does not know it. Check it and type it again.');
        else askToken('token needed', '');
        return;
      }
      if (res.status === 403) {
        sessionStorage.removeItem('sluice-token');
        const detail = await detailOf(res);
        askToken('not allowed', token
          ? "The token is known, but its role may not read the dashboard data (403)" + detail
          : 'The admin API refused to serve the dashboard data (403)' + detail);
        return;
      }
      $('token').style.display = 'none';
      render(await res.json());
    } catch (e) {
      $('dot').className = 'dot stale';
      $('updated').textContent = 'cannot reach the admin API';
    }
  }
  $('tokenForm').addEventListener('submit', (e) => {
    e.preventDefault();
    const typed = $('tokenInput').value.trim();
    if (!typed) { $('tokenMsg').textContent = 'Type a token first.'; return; }
    sessionStorage.setItem('sluice-token', typed);
    $('tokenMsg').textContent = '';
    $('meta').textContent = 'connecting…';
    prev = null;
    waiting = false;
    poll();
  });
  poll();
  setInterval(poll, POLL_MS);
})();
</script>
</body>
</html>
`;

/** The dashboard HTML. */
export function dashboardPage(): string {
  return PAGE;
}
