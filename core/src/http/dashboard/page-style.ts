/**
 * The dashboard's inline style sheet (page.ts puts it in a <style> element).
 *
 * Tables never clip: cells wrap long text (topics, client names, addresses)
 * instead of cutting it with an ellipsis, numbers stay on one line, and the
 * wide tables (mesh, connections) span the whole page. The Chromium test
 * checks at 1440x900 that no table or cell is wider than its container.
 */
export const DASHBOARD_CSS = `
  :root { --bg: #0f1419; --card: #171e26; --line: #2a3440; --fg: #d8dee6; --dim: #8a96a3; --in: #4aa3ff; --out: #3ecf8e; --warn: #f5b942; --bad: #ff6b6b; --self: #c792ea; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 12px; padding: 14px 20px; border-bottom: 1px solid var(--line); }
  h1 { font-size: 18px; margin: 0; }
  h2 { font-size: 13px; margin: 0 0 8px; color: var(--dim); text-transform: uppercase; letter-spacing: .06em; font-weight: 600; }
  h2 small { text-transform: none; letter-spacing: 0; font-weight: 400; margin-left: 6px; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
  .pill { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: var(--line); }
  .pill.ok { background: #1f5137; color: #b9f3d4; }
  .pill.bad { background: #5a2424; color: #ffd0d0; }
  .pill.warn { background: #5a4614; color: #ffe7b0; }
  #meta { color: var(--dim); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; padding: 14px 20px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
  .card.wide { grid-column: 1 / -1; }
  .tiles { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; }
  .tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
  .tile b { display: block; font-size: 20px; font-weight: 600; overflow-wrap: anywhere; }
  .tile span { color: var(--dim); font-size: 12px; }
  svg { width: 100%; height: auto; display: block; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
  th { color: var(--dim); font-weight: 500; font-size: 12px; white-space: nowrap; }
  td.num, th.num, td.state, td.addr { white-space: nowrap; }
  td.num, th.num { text-align: right; }
  td.none { color: var(--dim); font-style: italic; }
  tr.gone td { color: var(--dim); text-decoration: line-through; text-decoration-color: var(--bad); }
  tr.gone td.state, td.state.gone { text-decoration: none; color: var(--bad); }
  td.state.closing { color: var(--warn); }
  td.state.bad { color: var(--bad); }
  td.state.ok { color: var(--out); }
  tr.self td:first-child { color: var(--self); }
  .legend { display: flex; gap: 14px; font-size: 12px; color: var(--dim); margin-top: 4px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
  dl.kv dt { color: var(--dim); }
  dl.kv dd { margin: 0; overflow-wrap: anywhere; }
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
  #auth { grid-column: 1 / -1; border-color: var(--warn); }
  #auth p { margin: 0 0 8px; color: var(--dim); }
  #auth input { background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; }
  #auth button { background: var(--line); color: var(--fg); border: 0; border-radius: 4px; padding: 5px 10px; cursor: pointer; }
  #error { color: var(--bad); padding: 0 20px 14px; min-height: 1em; }
`;
