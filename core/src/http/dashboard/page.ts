/**
 * The live dashboard served at GET / and GET /dashboard: one static page,
 * plain HTML with an inline script and style, no framework and no external
 * asset (the Content-Security-Policy the server sends allows nothing else).
 * It polls the node's own JSON API: /v1/stats and /v1/stats/history every
 * second, /v1/cluster and /v1/workers every two seconds, /v1/node every
 * ten. The workers card shows only for a node run with --workers. When the API
 * wants an admin token, the page asks for it once (or takes it from
 * `#token=...` in the URL) and keeps it in sessionStorage.
 *
 * Every value from the node is set with textContent or an SVG attribute,
 * never as HTML: topics and client names come from clients.
 *
 * The script is kept free of backticks and dollar-brace so it can live in
 * this template literal as is.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshbus dashboard</title>
<style>
  :root { --bg: #0f1419; --card: #171e26; --line: #2a3440; --fg: #d8dee6; --dim: #8a96a3; --in: #4aa3ff; --out: #3ecf8e; --warn: #f5b942; --bad: #ff6b6b; --self: #c792ea; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 12px; padding: 14px 20px; border-bottom: 1px solid var(--line); }
  h1 { font-size: 18px; margin: 0; }
  h2 { font-size: 13px; margin: 0 0 8px; color: var(--dim); text-transform: uppercase; letter-spacing: .06em; font-weight: 600; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
  .pill { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: var(--line); }
  .pill.ok { background: #1f5137; color: #b9f3d4; }
  .pill.bad { background: #5a2424; color: #ffd0d0; }
  #meta { color: var(--dim); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 14px; padding: 14px 20px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
  .tiles { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; }
  .tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
  .tile b { display: block; font-size: 20px; font-weight: 600; }
  .tile span { color: var(--dim); font-size: 12px; }
  svg { width: 100%; height: auto; display: block; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
  th { color: var(--dim); font-weight: 500; font-size: 12px; }
  td.num, th.num { text-align: right; }
  td.none { color: var(--dim); font-style: italic; }
  .legend { display: flex; gap: 14px; font-size: 12px; color: var(--dim); margin-top: 4px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  .link { stroke-width: 2.5; }
  .link.up { stroke: var(--out); }
  .link.connecting { stroke: var(--warn); stroke-dasharray: 6 4; }
  .link.down { stroke: var(--bad); stroke-dasharray: 2 4; }
  .node circle { fill: #22303d; stroke: var(--in); stroke-width: 2; }
  .node.down circle { stroke: var(--bad); }
  .node.connecting circle { stroke: var(--warn); }
  .node.self circle { fill: #3a2950; stroke: var(--self); stroke-width: 4; }
  .node text { fill: var(--fg); font-size: 12px; text-anchor: middle; paint-order: stroke; stroke: var(--card); stroke-width: 3px; }
  .node text.sub { fill: var(--dim); font-size: 10px; }
  .node.self text.sub { fill: var(--self); }
  .axis { stroke: var(--line); stroke-width: 1; }
  .axis-label { fill: var(--dim); font-size: 10px; }
  .series { fill: none; stroke-width: 2; }
  .series.in { stroke: var(--in); stroke-width: 5; stroke-opacity: .55; }
  .series.out { stroke: var(--out); }
  #auth { grid-column: 1 / -1; }
  #auth input { background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; }
  #auth button { background: var(--line); color: var(--fg); border: 0; border-radius: 4px; padding: 5px 10px; cursor: pointer; }
  #error { color: var(--bad); padding: 0 20px 14px; min-height: 1em; }
</style>
</head>
<body>
<header>
  <h1>meshbus <span id="node-name"></span></h1>
  <code id="node-id"></code>
  <span id="status" class="pill">connecting</span>
  <span id="meta"></span>
</header>
<main>
  <section id="auth" class="card" hidden>
    <h2>Admin token required</h2>
    <form id="auth-form">
      <input id="token" type="password" autocomplete="off" placeholder="admin token">
      <button type="submit">Use token</button>
    </form>
  </section>
  <section class="tiles">
    <div class="tile"><b id="t-conns">-</b><span>connections</span></div>
    <div class="tile"><b id="t-subs">-</b><span>subscriptions</span></div>
    <div class="tile"><b id="t-in">-</b><span>msgs in / s</span></div>
    <div class="tile"><b id="t-out">-</b><span>msgs out / s</span></div>
    <div class="tile"><b id="t-peers">-</b><span>peers up</span></div>
    <div class="tile"><b id="t-lag">-</b><span>event-loop lag p99</span></div>
    <div class="tile"><b id="t-rss">-</b><span>memory (rss)</span></div>
  </section>
  <section class="card">
    <h2>Mesh topology</h2>
    <svg id="topology" viewBox="0 0 480 320" role="img" aria-label="mesh topology"></svg>
  </section>
  <section class="card">
    <h2>Message rates</h2>
    <svg id="rates" viewBox="0 0 480 220" role="img" aria-label="message rates"></svg>
    <div class="legend"><span><i style="background: var(--in)"></i>in / s</span><span><i style="background: var(--out)"></i>out / s</span><span id="rates-span"></span></div>
  </section>
  <section class="card">
    <h2>Top topics</h2>
    <table id="topics"><thead><tr><th>topic</th><th class="num">events</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Slow consumers</h2>
    <table id="slow"><thead><tr><th>client</th><th>remote</th><th class="num">pending</th><th class="num">dropped</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="workers-card" class="card" hidden>
    <h2>Workers</h2>
    <table id="workers"><thead><tr><th>worker</th><th>node</th><th class="num">pid</th><th class="num">conns</th><th class="num">subs</th><th class="num">in / s</th><th class="num">out / s</th><th class="num">lag p99</th><th class="num">rss</th><th class="num">slow</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Peers</h2>
    <table id="peers"><thead><tr><th>node</th><th>address</th><th>state</th><th class="num">rtt</th><th class="num">in</th><th class="num">out</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<div id="error"></div>
<script>
  var BASE = '__MESHBUS_BASE__';
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var token = null;
  var selfId = null;
  try {
    var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      token = decodeURIComponent(m[1]);
      sessionStorage.setItem('meshbus.token', token);
      history.replaceState(null, '', location.pathname + location.search);
    } else {
      token = sessionStorage.getItem('meshbus.token');
    }
  } catch (e) { /* storage unavailable: ask each time */ }

  function $(id) { return document.getElementById(id); }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function count(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n * 10) / 10);
  }
  function bytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(1) + ' GiB';
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return n + ' B';
  }
  function ms(v) { return v === undefined || v === null ? '-' : (Math.round(v * 10) / 10) + ' ms'; }
  function duration(s) {
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function shortId(id) { return id.length > 8 ? id.slice(0, 8) : id; }

  var authNeeded = false;
  function needToken() {
    authNeeded = true;
    $('auth').hidden = false;
  }
  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('token').value.trim() || null;
    try { if (token) sessionStorage.setItem('meshbus.token', token); } catch (e) { /* ignore */ }
    authNeeded = false;
    $('auth').hidden = true;
    refreshAll();
  });

  function get(path) {
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(BASE + path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 401 || r.status === 403) { needToken(); throw new Error('the API wants a valid admin token'); }
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function showError(e) {
    $('error').textContent = e && e.message ? e.message : String(e);
    var s = $('status');
    s.textContent = 'unreachable';
    s.className = 'pill bad';
  }
  function clearError() { $('error').textContent = ''; }

  function fillTable(id, rows, cells) {
    var body = $(id).tBodies[0];
    clear(body);
    if (rows.length === 0) {
      var tr = body.insertRow();
      var td = tr.insertCell();
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.className = 'none';
      td.textContent = 'none';
      return;
    }
    rows.forEach(function (row) {
      var tr = body.insertRow();
      cells(row).forEach(function (c) {
        var td = tr.insertCell();
        if (typeof c === 'number') { td.className = 'num'; td.textContent = count(c); }
        else td.textContent = c;
        td.title = td.textContent;
      });
    });
  }

  // ---- topology ----
  function drawTopology(c) {
    var root = $('topology');
    clear(root);
    var W = 480, H = 320;
    var nodes = c.nodes.slice().sort(function (a, b) { return a.self ? -1 : b.self ? 1 : a.id < b.id ? -1 : 1; });
    var pos = {};
    var n = nodes.length;
    var r = n <= 1 ? 0 : Math.min(W, H) / 2 - 56;
    nodes.forEach(function (node, i) {
      var a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
      pos[node.id] = { x: W / 2 + r * Math.cos(a), y: H / 2 + r * Math.sin(a) };
    });
    c.links.forEach(function (l) {
      var p = pos[l.from], q = pos[l.to];
      if (!p || !q) return;
      var line = svg('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, 'class': 'link ' + l.state, 'data-link': l.from + '-' + l.to });
      line.appendChild(svg('title', {}, l.from + ' \\u2192 ' + l.to + ': ' + l.state + (l.rttMs !== undefined ? ', rtt ' + ms(l.rttMs) : '')));
      root.appendChild(line);
      if (l.rttMs !== undefined) root.appendChild(svg('text', { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 - 4, 'class': 'axis-label', 'text-anchor': 'middle' }, ms(l.rttMs)));
    });
    nodes.forEach(function (node) {
      var p = pos[node.id];
      var g = svg('g', { 'class': 'node ' + node.state + (node.self ? ' self' : ''), 'data-node-id': node.id, transform: 'translate(' + p.x + ',' + p.y + ')' });
      g.appendChild(svg('title', {}, node.id + (node.address ? ' @ ' + node.address : '')));
      g.appendChild(svg('circle', { r: node.self ? 26 : 21 }));
      g.appendChild(svg('text', { y: node.self ? 42 : 37 }, node.name || shortId(node.id)));
      g.appendChild(svg('text', { y: node.self ? 55 : 50, 'class': 'sub' }, node.self ? 'this node' : node.state));
      g.appendChild(svg('text', { y: 4, 'class': 'sub' }, shortId(node.id).slice(0, 4)));
      root.appendChild(g);
    });
    if (!c.clustered) root.appendChild(svg('text', { x: W / 2, y: H - 12, 'class': 'axis-label', 'text-anchor': 'middle' }, 'standalone node (no cluster attached)'));
  }

  // ---- rates chart ----
  function niceMax(v) {
    if (v <= 1) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function drawRates(h) {
    var root = $('rates');
    clear(root);
    var W = 480, H = 220, L = 48, R = 8, T = 10, B = 22;
    var s = h.samples;
    var now = s.length ? s[s.length - 1].t : Date.now();
    var span = Math.max(60000, Math.min(300000, s.length ? now - s[0].t : 0));
    var top = 1;
    s.forEach(function (x) { top = Math.max(top, x.msgsIn, x.msgsOut); });
    top = niceMax(top);
    function X(t) { return L + ((t - (now - span)) / span) * (W - L - R); }
    function Y(v) { return T + (1 - v / top) * (H - T - B); }
    [0, 0.5, 1].forEach(function (f) {
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: Y(top * f), y2: Y(top * f), 'class': 'axis' }));
      root.appendChild(svg('text', { x: L - 6, y: Y(top * f) + 3, 'class': 'axis-label', 'text-anchor': 'end' }, count(top * f)));
    });
    var marks = span > 120000 ? [span, span * 0.75, span * 0.5, span * 0.25, 0] : [span, span / 2, 0];
    marks.forEach(function (d) {
      var label = d === 0 ? 'now' : '-' + (d >= 60000 ? Math.round(d / 6000) / 10 + 'm' : Math.round(d / 1000) + 's');
      root.appendChild(svg('text', { x: X(now - d), y: H - 6, 'class': 'axis-label', 'text-anchor': d === span ? 'start' : d === 0 ? 'end' : 'middle' }, label));
    });
    [['msgsIn', 'in'], ['msgsOut', 'out']].forEach(function (k) {
      var pts = s.map(function (x) { return X(x.t).toFixed(1) + ',' + Y(x[k[0]]).toFixed(1); }).join(' ');
      if (pts) root.appendChild(svg('polyline', { points: pts, 'class': 'series ' + k[1], 'data-series': k[0] }));
    });
    $('rates-span').textContent = s.length + ' samples, ' + (h.intervalMs / 1000) + ' s apart';
  }

  // ---- polling ----
  function refreshNode() {
    return get('/v1/node').then(function (n) {
      selfId = n.id;
      $('node-name').textContent = n.name || '';
      $('node-id').textContent = n.id;
      $('meta').textContent = 'v' + n.version + ' \\u00b7 ' + n.address + ' \\u00b7 scanner ' + n.scanner + ' \\u00b7 up ' + duration(n.uptimeSeconds);
      document.title = 'meshbus ' + (n.name || shortId(n.id));
      var s = $('status');
      s.textContent = n.draining ? 'draining' : n.ready ? 'ready' : 'not ready';
      s.className = 'pill ' + (n.ready ? 'ok' : 'bad');
    });
  }
  function refreshCluster() {
    return get('/v1/cluster').then(function (c) {
      drawTopology(c);
      var up = c.peers.filter(function (p) { return p.state === 'up'; }).length;
      $('t-peers').textContent = up + ' / ' + c.peers.length;
      fillTable('peers', c.peers, function (p) { return [p.name || p.id, p.address, p.state, ms(p.rttMs), p.msgsIn, p.msgsOut]; });
    });
  }
  function refreshStats() {
    return Promise.all([get('/v1/stats'), get('/v1/stats/history')]).then(function (r) {
      var st = r[0];
      $('t-conns').textContent = count(st.connections);
      $('t-subs').textContent = count(st.subscriptions);
      $('t-in').textContent = count(st.rates.msgsIn);
      $('t-out').textContent = count(st.rates.msgsOut);
      $('t-lag').textContent = ms(st.eventLoopLagMs.p99);
      $('t-rss').textContent = bytes(st.memory.rss);
      fillTable('topics', st.topTopics, function (t) { return [t.topic, t.count]; });
      fillTable('slow', st.slowConsumers, function (c) { return [c.name ? c.name + ' (' + c.clientId.slice(0, 8) + ')' : c.clientId, c.remote, bytes(c.pending), c.dropped]; });
      drawRates(r[1]);
    });
  }
  function refreshWorkers() {
    return get('/v1/workers').then(function (w) {
      // Only a node run with --workers has any: the card stays hidden otherwise.
      $('workers-card').hidden = w.workers.length === 0;
      fillTable('workers', w.workers, function (x) {
        return ['#' + x.worker, x.name || shortId(x.id), String(x.pid), x.connections, x.subscriptions, x.msgsIn, x.msgsOut, ms(x.lagP99Ms), bytes(x.rss), x.slowConsumers];
      });
    });
  }
  function guard(p) { return p.then(clearError, showError); }
  function refreshAll() { guard(Promise.all([refreshNode(), refreshCluster(), refreshStats(), refreshWorkers()])); }

  var ticks = 0;
  refreshAll();
  setInterval(function () {
    if (authNeeded) return;
    ticks++;
    var work = [refreshStats()];
    if (ticks % 2 === 0) work.push(refreshCluster(), refreshWorkers());
    if (ticks % 10 === 0) work.push(refreshNode());
    guard(Promise.all(work));
  }, 1000);
})();
</script>
</body>
</html>
`;

/**
 * The page for an API mounted under `prefix` ('' at the root, else e.g.
 * '/meshbus'): its calls to /v1/* go under the same prefix. The prefix is
 * a fastify route prefix (path characters only); it is written as a JSON
 * string, '<' escaped, so it cannot end the script.
 */
export function dashboardHtml(prefix: string): string {
  const literal = JSON.stringify(prefix).replace(/</g, '\\u003c');
  return DASHBOARD_HTML.replace("'__MESHBUS_BASE__'", () => literal);
}
