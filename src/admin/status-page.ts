/**
 * The page served at the admin listener's `/`: it holds no data itself and reads `/api/status`
 * every two seconds.
 */

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f7f8fa; --card: #fff; --line: #e4e7ec;
          --up: #12b76a; --down: #f04438; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --bg: #0f1218; --card: #171b24; --line: #262c38; } }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 16px 24px; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 18px; }
  header span { color: var(--muted); }
  main { padding: 16px 24px; display: grid; gap: 16px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 500; }
  .up { color: var(--up); } .down, .failed { color: var(--down); }
</style>
</head>
<body>
<header><h1>sluice</h1><span id="meta">loading…</span></header>
<main>
  <section><h2>Servers</h2><table id="servers"></table></section>
  <section><h2>Upstreams</h2><table id="upstreams"></table></section>
</main>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
async function refresh() {
  try {
    const s = await (await fetch('/api/status', { cache: 'no-store' })).json();
    document.getElementById('meta').textContent =
      'v' + s.version + ' · pid ' + s.pid + ' · up ' + Math.round(s.uptime_s) + 's · config ' + s.config.hash;
    document.getElementById('servers').innerHTML = '<tr><th>server</th><th>listen</th><th>routes</th></tr>' +
      s.servers.map((v) => '<tr><td>' + esc(v.name) + '</td><td>' + esc(v.listen.join(', ')) + '</td><td>' +
        esc(v.routes.map((r) => r.name + ' → ' + r.action).join(' · ')) + '</td></tr>').join('');
    document.getElementById('upstreams').innerHTML = '<tr><th>upstream</th><th>target</th><th>state</th><th>in flight</th></tr>' +
      s.upstreams.flatMap((u) => u.targets.map((t) => '<tr><td>' + esc(u.name) + '</td><td>' + esc(t.target) +
        '</td><td class="' + esc(t.state) + '">' + esc(t.state) + '</td><td>' + t.inflight + '</td></tr>')).join('');
  } catch (e) {
    document.getElementById('meta').textContent = 'cannot reach /api/status: ' + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;

/** The status page HTML. */
export function statusPage(): string {
  return PAGE;
}
