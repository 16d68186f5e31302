import { DASHBOARD_SCRIPT } from './page-script.js';
import { DASHBOARD_CSS } from './page-style.js';

/**
 * The live dashboard served at GET / and GET /dashboard: one static page,
 * plain HTML with an inline script (page-script.ts) and style
 * (page-style.ts), no framework and no external asset (the
 * Content-Security-Policy the server sends allows nothing else).
 *
 * Sections: tiles (this node), the mesh topology, message rates, top topics
 * (internal `_…` topics left out), slow consumers (disconnected ones marked),
 * peers, durability (shown only when the node runs a durable store), the
 * mesh-wide table (every node's state, connections, rates, lag, memory, slow
 * consumers and durability, from GET /v1/mesh) with every node's slow
 * consumers, and this node's connections.
 * A workers card (GET /v1/workers) shows only for a node run with --workers.
 *
 * Every value from the node is set with textContent or an SVG attribute,
 * never as HTML: topics and client names come from clients.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshbus dashboard</title>
<style>${DASHBOARD_CSS}</style>
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
    <p id="auth-why"></p>
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
    <table id="slow"><thead><tr><th>client</th><th>remote</th><th class="num">pending</th><th class="num">dropped</th><th>state</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="workers-card" class="card" hidden>
    <h2>Workers</h2>
    <table id="workers"><thead><tr><th>worker</th><th>node</th><th class="num">pid</th><th class="num">conns</th><th class="num">subs</th><th class="num">in / s</th><th class="num">out / s</th><th class="num">lag p99</th><th class="num">rss</th><th class="num">slow</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Peers</h2>
    <table id="peers"><thead><tr><th>node</th><th>address</th><th>state</th><th class="num">rtt</th><th class="num">in</th><th class="num">out</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="durability" class="card" hidden>
    <h2>Durability</h2>
    <dl class="kv">
      <dt>redis</dt><dd><span id="d-redis" class="pill">-</span></dd>
      <dt>writes waiting for redis</dt><dd id="d-pending">-</dd>
      <dt>publishes refused (backlog)</dt><dd id="d-backlog">-</dd>
      <dt>corrupt entries skipped</dt><dd id="d-corrupt">-</dd>
      <dt>history pages read</dt><dd id="d-pages">-</dd>
      <dt>replays refused</dt><dd id="d-refused">-</dd>
      <dt>publishes refused (store full)</dt><dd id="d-full">-</dd>
    </dl>
  </section>
  <section class="card wide">
    <h2>Mesh <small id="mesh-count"></small></h2>
    <table id="mesh"><thead><tr><th>node</th><th>state</th><th class="num">connections</th><th class="num">subscriptions</th><th class="num">in / s</th><th class="num">out / s</th><th class="num">lag p99</th><th class="num">rss</th><th class="num">slow consumers</th><th>durability</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card wide">
    <h2>Slow consumers in the mesh</h2>
    <table id="mesh-slow"><thead><tr><th>node</th><th>client</th><th>remote</th><th class="num">pending</th><th class="num">dropped</th><th>state</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card wide">
    <h2>Connections <small id="conns-count"></small></h2>
    <table id="conns"><thead><tr><th>client id</th><th>name</th><th>kind</th><th>remote</th><th>lang</th><th class="num">subs</th><th class="num">in</th><th class="num">out</th><th class="num">pending</th><th class="num">dropped</th><th>state</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<div id="error"></div>
<script>${DASHBOARD_SCRIPT}</script>
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
