import type { ErrorCode, Frame } from '@meshbus/proto';
import { ToldRecently, type MeshNode } from '@meshbus/core';
import type { PeerLink } from './peer-link.js';
import { REPORT_EVERY } from './redialer.js';

/**
 * What a mesh whose nodes have different `maxPayload` does (cluster/README.md,
 * "Limits"). Each node says its limit in its HELLO/WELCOME peer info; a node
 * never sends a link an event whose payload is larger than the peer there
 * accepts (PeerLink.deliver: the link is skipped for that event, counted in
 * `dropped.tooLargeForPeer`), and drops one that reaches it anyway from a
 * peer (an older node that does not look) over its own limit, counted in
 * `dropped.tooLargeFromPeer`. Either is told once per peer (and way) every
 * REPORT_EVERY: a mismatch repeats with every large event, and before this
 * the receiver logged "bad frame from peer" once per frame, forever.
 */
export class PayloadLimits {
  private readonly told = new ToldRecently(REPORT_EVERY);

  constructor(private readonly node: MeshNode) {}

  /** An event a link lost (PeerLink: dropped from or discarded by its queue, or past its maxHops; from a peer, older than its origin's last), counted node-wide. */
  eventLost(kind: 'slowPeer' | 'maxHops' | 'outOfOrder'): void {
    this.node.stats.dropped[kind]++;
  }

  /** A link's input paused by flow control, or (`stalled`) its receivers given up on at maxStall: counted as a client's are (meshbus_flow_pauses_total, meshbus_flow_stalls_total; before, links' were not). */
  flowHeld(stalled: boolean): void {
    if (stalled) this.node.stats.flowStalls++;
    else this.node.stats.flowPauses++;
  }

  /** An event not sent to `link`'s peer: larger than it accepts. */
  tooLargeForPeer(link: PeerLink, payloadLen: number): void {
    this.node.stats.dropped.tooLargeForPeer++;
    if (!this.told.due(`for ${link.peerId ?? link.remote}`, undefined, 'for')) return;
    this.node.logger.warn(
      { peer: link.peerId, peerName: link.peer?.name, kind: link.kind, payload: payloadLen, peerMaxPayload: link.peerMaxPayload, maxPayload: this.node.options.maxPayload },
      'event larger than the peer accepts not forwarded to it (its --max-payload is smaller; counted in dropped.tooLargeForPeer, said again at most every 5 min)',
    );
  }

  /**
   * True when an event from a peer has a payload over this node's limit: it
   * is dropped, counted and told. A node holds no event larger than it
   * accepts from its own clients, wherever it comes from (its clients were
   * told that limit in WELCOME; before, a peer's event up to twice the limit
   * was delivered and a larger one refused frame by frame).
   */
  refusedFromPeer(link: PeerLink, f: Frame): boolean {
    const max = this.node.options.maxPayload;
    if (f.payloadLen <= max) return false;
    this.fromPeer(link, 'MB_ERR_PAYLOAD_TOO_LARGE', `${f.payloadLen} bytes, limit ${max}`);
    return true;
  }

  /**
   * A frame from an authenticated peer the decoder refused without ending
   * the link: a frame over the decoder's limit (skipped unbuffered), a bad
   * topic... Told once per peer and code every REPORT_EVERY.
   */
  badFrame(link: PeerLink, code: ErrorCode, message: string): void {
    if (code === 'MB_ERR_FRAME_TOO_LARGE') return this.fromPeer(link, code, message);
    this.node.stats.protocolErrors++;
    if (this.told.due(`bad ${link.peerId ?? link.remote} ${code}`, undefined, `bad ${code}`)) {
      this.node.logger.warn({ peer: link.peerId, code, message }, 'bad frame from peer dropped (said again at most every 5 min per code)');
    }
  }

  private fromPeer(link: PeerLink, code: ErrorCode, message: string): void {
    this.node.stats.dropped.tooLargeFromPeer++;
    if (!this.told.due(`from ${link.peerId ?? link.remote} ${code}`, undefined, `from ${code}`)) return;
    this.node.logger.warn(
      { peer: link.peerId, peerName: link.peer?.name, kind: link.kind, code, message, maxPayload: this.node.options.maxPayload },
      'event from peer larger than this node accepts dropped (the peer does not skip it: an older node; counted in dropped.tooLargeFromPeer, said again at most every 5 min)',
    );
  }
}
