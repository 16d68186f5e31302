/**
 * The dashboard's inline script (page.ts puts it in a <script> element).
 * Plain ES5 in one closure, no framework. It polls the node's JSON API:
 * /v1/stats and /v1/stats/history every second; /v1/cluster, /v1/mesh and
 * /v1/connections every two seconds; /v1/node every ten.
 *
 * Admin token: on 401/403 the page shows a prompt (not "unreachable"),
 * stops polling until a token is typed, keeps it in sessionStorage and sends
 * it as `Authorization: Bearer`. `#token=...` in the URL does the same and is
 * removed from the address bar.
 *
 * Every value from the node is set with textContent or an SVG attribute,
 * never as HTML: topics, client names and addresses come from clients, node
 * names and figures of other nodes from peers.
 *
 * Kept free of backticks and dollar-brace so it can live in a template
 * literal as is. `'__MESHBUS_BASE__'` is replaced by the API prefix.
 */
export const DASHBOARD_SCRIPT = `
  var BASE = '__MESHBUS_BASE__';
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var token = null;
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
    if (typeof n !== 'number' || !isFinite(n)) return '-';
    if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n * 10) / 10);
  }
  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '-';
    if (n >= 1073741824) return (n / 1073741824).toFixed(1) + ' GiB';
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return n + ' B';
  }
  function ms(v) { return typeof v !== 'number' ? '-' : (Math.round(v * 10) / 10) + ' ms'; }
  function duration(s) {
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function str(v) { return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v); }
  function shortId(id) { id = str(id); return id.length > 8 ? id.slice(0, 8) : id; }
  function clientLabel(c) { return c.name ? str(c.name) + ' (' + shortId(c.clientId) + ')' : str(c.clientId); }

  // ---- admin token ----
  var authNeeded = false;
  function AuthNeeded(status) { this.message = status === 403 ? 'the admin token was refused: type the right one' : 'this node wants its admin token'; this.auth = true; }
  function needToken(status) {
    authNeeded = true;
    $('auth').hidden = false;
    $('auth-why').textContent = new AuthNeeded(status).message;
    var s = $('status');
    s.textContent = 'admin token needed';
    s.className = 'pill warn';
    $('token').focus();
  }
  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('token').value.trim() || null;
    try { if (token) sessionStorage.setItem('meshbus.token', token); } catch (e) { /* ignore */ }
    $('token').value = '';
    authNeeded = false;
    $('auth').hidden = true;
    refreshAll();
  });

  function get(path) {
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(BASE + path, { headers: headers, cache: 'no-store' }).then(function (r) {
      if (r.status === 401 || r.status === 403) { needToken(r.status); throw new AuthNeeded(r.status); }
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function showError(e) {
    if (e && e.auth) { $('error').textContent = ''; return; }
    $('error').textContent = e && e.message ? e.message : String(e);
    var s = $('status');
    s.textContent = 'unreachable';
    s.className = 'pill bad';
  }
  function clearError() { $('error').textContent = ''; }

  // A cell: a number (formatted, right-aligned), a string, or { text, cls }.
  function fillTable(id, rows, cells, rowClass) {
    var table = $(id);
    var body = table.tBodies[0];
    clear(body);
    if (rows.length === 0) {
      var tr0 = body.insertRow();
      var td0 = tr0.insertCell();
      td0.colSpan = table.tHead.rows[0].cells.length;
      td0.className = 'none';
      td0.textContent = 'none';
      return;
    }
    rows.forEach(function (row) {
      var tr = body.insertRow();
      if (rowClass) tr.className = rowClass(row) || '';
      cells(row).forEach(function (c) {
        var td = tr.insertCell();
        if (typeof c === 'number') { td.className = 'num'; td.textContent = count(c); }
        else if (c && typeof c === 'object') { td.className = c.cls || ''; td.textContent = str(c.text); }
        else td.textContent = str(c);
        td.title = td.textContent;
      });
    });
  }
  function num(text) { return { text: text, cls: 'num' }; }
  function addr(text) { return { text: text, cls: 'addr' }; }

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

  // ---- slow consumers, durability, mesh, connections ----
  function slowState(c) {
    if (c.state === 'disconnected') return { text: 'disconnected', cls: 'state gone' };
    if (c.state === 'closing') return { text: 'closing', cls: 'state closing' };
    return { text: 'open', cls: 'state' };
  }
  function slowRow(c) { return c.state === 'disconnected' ? 'gone' : ''; }
  function redisText(d) { return d.redis === 'up' ? 'up' : d.redis === 'down' ? 'down' : 'unknown'; }
  function durabilityText(d) {
    if (!d || !d.on) return 'off';
    return 'redis ' + redisText(d) + (d.writesPending >= 0 ? ', ' + d.writesPending + ' pending' : '');
  }
  function drawDurability(d) {
    var card = $('durability');
    card.hidden = !(d && d.on);
    if (card.hidden) return;
    var redis = $('d-redis');
    redis.textContent = redisText(d);
    redis.className = 'pill ' + (d.redis === 'up' ? 'ok' : d.redis === 'down' ? 'bad' : '');
    $('d-pending').textContent = d.writesPending >= 0 ? count(d.writesPending) : 'not reported';
    $('d-backlog').textContent = count(d.refusedBacklog);
    $('d-corrupt').textContent = count(d.corrupt);
    $('d-pages').textContent = count(d.replayPages);
    $('d-refused').textContent = count(d.replaysRefused);
    $('d-full').textContent = count(d.refusedFull);
  }
  var errorText = { MB_ERR_NO_RESPONDERS: 'no answer route (no HTTP API there, or no link)', MB_ERR_TIMEOUT: 'no answer in time', MB_ERR_PERMISSION_DENIED: 'admin token differs' };
  function drawMesh(v) {
    var nodes = v.nodes || [];
    var answered = nodes.filter(function (n) { return n.summary; }).length;
    $('mesh-count').textContent = answered + ' of ' + nodes.length + ' nodes answered';
    fillTable('mesh', nodes, function (n) {
      var s = n.summary;
      var name = (n.name || shortId(n.id)) + (n.self ? ' (this node)' : '');
      if (!s) {
        var code = n.error ? str(n.error.code) : '';
        return [name, { text: errorText[code] || code || 'unknown', cls: 'state bad' }, '-', '-', '-', '-', '-', '-', '-', '-'];
      }
      var state = s.draining ? 'draining' : s.ready ? 'ready' : 'not ready';
      var slow = s.slowConsumers.filter(function (c) { return c.state !== 'disconnected'; }).length;
      var gone = s.slowConsumers.length - slow;
      return [name, { text: state, cls: 'state ' + (s.ready && !s.draining ? 'ok' : 'bad') }, s.connections, s.subscriptions, s.rates.msgsIn, s.rates.msgsOut, num(ms(s.lagP99Ms)), num(bytes(s.rss)),
        num(slow + (gone ? ' + ' + gone + ' gone' : '')), durabilityText(s.durability)];
    }, function (n) { return n.self ? 'self' : ''; });
    var slowAll = [];
    nodes.forEach(function (n) {
      if (!n.summary) return;
      n.summary.slowConsumers.forEach(function (c) { slowAll.push({ node: n.name || shortId(n.id), c: c }); });
    });
    fillTable('mesh-slow', slowAll, function (x) { return [x.node, clientLabel(x.c), addr(x.c.remote), num(bytes(x.c.pending)), x.c.dropped, slowState(x.c)]; }, function (x) { return slowRow(x.c); });
  }
  function drawConnections(v) {
    $('conns-count').textContent = v.connections.length < v.total ? v.connections.length + ' of ' + v.total : String(v.total);
    fillTable('conns', v.connections, function (c) {
      return [{ text: c.clientId, cls: 'mono' }, str(c.name), str(c.kind), addr(c.remote), str(c.lang), c.subscriptions, c.msgsIn, c.msgsOut, num(bytes(c.pending)), c.dropped,
        c.open ? { text: c.congested ? 'congested' : 'open', cls: 'state' + (c.congested ? ' closing' : '') } : { text: 'closing', cls: 'state closing' }];
    });
  }

  // ---- polling ----
  function refreshNode() {
    return get('/v1/node').then(function (n) {
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
      fillTable('peers', c.peers, function (p) { return [p.name || p.id, p.address, p.state, num(ms(p.rttMs)), p.msgsIn, p.msgsOut]; });
    });
  }
  var meshBusy = false;
  function refreshMesh() {
    // Asking other nodes can take up to their timeout: never two rounds at once.
    if (meshBusy) return Promise.resolve();
    meshBusy = true;
    return get('/v1/mesh').then(drawMesh).then(function () { meshBusy = false; }, function (e) { meshBusy = false; throw e; });
  }
  function refreshConnections() { return get('/v1/connections?limit=50').then(drawConnections); }
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
      fillTable('slow', st.slowConsumers, function (c) { return [clientLabel(c), addr(c.remote), num(bytes(c.pending)), c.dropped, slowState(c)]; }, slowRow);
      drawDurability(st.durability);
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
  function refreshAll() { guard(Promise.all([refreshNode(), refreshCluster(), refreshStats(), refreshMesh(), refreshConnections(), refreshWorkers()])); }

  var ticks = 0;
  refreshAll();
  setInterval(function () {
    if (authNeeded) return;
    ticks++;
    var work = [refreshStats()];
    if (ticks % 2 === 0) work.push(refreshCluster(), refreshMesh(), refreshConnections(), refreshWorkers());
    if (ticks % 10 === 0) work.push(refreshNode());
    guard(Promise.all(work));
  }, 1000);
})();
`;
