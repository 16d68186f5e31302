/** The chaos engine's report (chaos-mesh.ts): its shape, its summary, and the probes that fill it (HTTP views, /metrics, /proc RSS). */
import { summarizeDurable, type DurableReport } from './chaos-durable.js';

export type FaultKind = 'kill' | 'drop' | 'stall';

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  at: number;
  /** ms from injection until every subscriber got an event of every publisher published after the injection. */
  flowAfterFaultMs: number | null;
  /** ms from healing (restart / proxy back to pass) until the same holds for events published after healing. */
  flowAfterHealMs: number | null;
  /** Plain deliveries out of per-publisher order from this fault's injection until the next one's (or the end). */
  reordered: number;
}

export interface ChaosReport {
  startedAt: string;
  nodes: number;
  durationMs: number;
  publishers: number;
  subscribers: number;
  rate: number;
  faults: FaultRecord[];
  faultCounts: Record<FaultKind, number>;
  /** Events published (handed to the SDK) per publisher, summed. */
  sent: number;
  /** Deliveries expected: sent x subscribers. */
  expected: number;
  received: number;
  duplicates: number;
  reordered: number;
  /** Of which before the first fault. */
  reorderedBeforeFaults: number;
  lost: number;
  unexpectedExits: string[];
  finalExitCodes: Array<number | null>;
  peakRssMb: number[];
  rssAfterMb: number[];
  maxFlowAfterFaultMs: number | null;
  maxFlowAfterHealMs: number | null;
  proxy: { accepted: number; cut: number };
  durable: DurableReport;
}

export async function httpGet(port: number, path: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: ctl.signal });
    return { status: res.status, body: await res.text() };
  } finally {
    clearTimeout(t);
  }
}

/** A Prometheus sample's value: `name{labels} value`, labels matched as a substring. */
export function metric(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith('{') || rest.startsWith(' '))) continue;
    if (labels && !rest.includes(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) return v;
  }
  return undefined;
}

export function summarize(r: ChaosReport): string {
  const lines = [
    `chaos: ${r.nodes} nodes, ${(r.durationMs / 1000).toFixed(0)} s, ${r.publishers} publishers x ${r.rate}/s, ${r.subscribers} subscribers`,
    `faults: ${r.faults.length} (kill ${r.faultCounts.kill}, drop ${r.faultCounts.drop}, stall ${r.faultCounts.stall}); proxy connections ${r.proxy.accepted}, cut ${r.proxy.cut}`,
    `events: sent ${r.sent}, deliveries expected ${r.expected}, received ${r.received}, lost ${r.lost} (${((100 * r.lost) / Math.max(1, r.expected)).toFixed(2)}%), duplicates ${r.duplicates}, out of order ${r.reordered}${r.reorderedBeforeFaults ? ` (${r.reorderedBeforeFaults} before the first fault)` : ''}`,
    `flow resumed (all subscribers, all publishers): max ${r.maxFlowAfterHealMs} ms after healing, max ${r.maxFlowAfterFaultMs} ms after the fault`,
    ...r.faults.map((f) => `  ${(f.at / 1000).toFixed(1)}s ${f.kind.padEnd(5)} ${f.target.padEnd(22)} after fault ${f.flowAfterFaultMs ?? 'NEVER'} ms, after heal ${f.flowAfterHealMs ?? 'NEVER'} ms${f.reordered ? `, ${f.reordered} out of order until the next fault` : ''}`),
    `peak RSS per node (MB): ${r.peakRssMb.join(', ')}; at the end: ${r.rssAfterMb.join(', ')}`,
    `unexpected exits: ${r.unexpectedExits.length}; exit codes on SIGTERM: ${r.finalExitCodes.join(', ')}`,
    ...summarizeDurable(r.durable),
  ];
  return lines.join('\n');
}
