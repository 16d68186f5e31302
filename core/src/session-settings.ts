import { Repeats, repeatingScanner } from '@meshbus/proto';
import type { ConnectionSettings } from './connection.js';
import type { NodeContext } from './node-context.js';
import { outboundBudgetOf } from './outbound-budget.js';

/**
 * The connection settings of a node's client sessions: one object per node,
 * shared by its sessions (a node's options do not change once it runs), not
 * two per connection (issue #15 footprint).
 */
const settingsByNode = new WeakMap<NodeContext, ConnectionSettings>();
export function settingsOf(ctx: NodeContext): ConnectionSettings {
  let s = settingsByNode.get(ctx);
  if (s) return s;
  const o = ctx.options;
  s = {
    // Asked for repeated headers (SCAN_REPEAT): a PUB repeating the one before skips its checks (MeshNode.publishRepeat).
    scanner: repeatingScanner(ctx.scanner, Repeats.HEADER),
    // Until HELLO is accepted only a small frame is read: nothing larger is buffered or decoded for an unknown peer.
    preAuthFrameLength: o.maxHelloSize,
    maxFrameLength: ctx.maxFrameLength,
    highWater: Math.min(1024 * 1024, o.maxPending >>> 1),
    maxPending: o.maxPending,
    policy: 'disconnect',
    handshakeTimeout: o.handshakeTimeout,
    liveness: { interval: o.pingInterval, maxOut: o.maxPingsOut, wakeTimeout: o.pingInterval },
    closeTimeout: o.drainTimeout,
    budget: ctx.inputBudget,
    // The node's outbound budget (SPEC 10.6), found by its input budget: its peer links share it.
    outbound: outboundBudgetOf(ctx.inputBudget, o.outboundBudget),
  };
  settingsByNode.set(ctx, s);
  return s;
}
