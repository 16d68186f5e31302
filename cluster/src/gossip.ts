import { FrameType } from '@meshbus/proto';
import { ToldRecently, type LinkView, type Logger } from '@meshbus/core';
import type { ResolvedClusterOptions } from './options.js';
import type { PeerLink } from './peer-link.js';
import { PeerInfoError, isNodeId, parsePeerInfo, type PeerInfo } from './peer-info.js';
import type { Redialer } from './redialer.js';

/** Nodes repeat their gossip this often, ms, so topology views stay fresh. */
export const GOSSIP_EVERY = 5_000;

/** What gossip reads and updates of the ClusterNode it serves (shared maps, not copies). */
export interface GossipState {
  self: PeerInfo;
  options: ResolvedClusterOptions;
  logger: Logger;
  /** Up links by peer node id. */
  byPeer: ReadonlyMap<string, PeerLink>;
  /** Every node heard of, by id (bounded by options.maxKnownPeers). */
  known: Map<string, PeerInfo>;
  redialer: Redialer;
}

/**
 * Discovery and topology: PEERS frames out (the nodes this one is linked to,
 * and its links) and in (nodes to dial in a full mesh, other nodes' links
 * for /v1/cluster views). Every gossiped entry is checked (peer-info.ts).
 */
/** How often the same refused gossip of one peer is logged again, ms (it is answered every time). */
const LOG_EVERY = 5 * 60_000;

export class Gossip {
  /** Links of other nodes, as they gossiped them: node id → (peer ids, when heard). */
  private readonly remoteLinks = new Map<string, { peers: string[]; at: number }>();
  private lastSent = 0;
  private knownFullWarned = false;
  /** Refused gossip said recently, per peer and error: a peer repeats its PEERS every 5 s, forever. */
  private readonly refusalsTold = new ToldRecently(LOG_EVERY);

  constructor(private readonly s: GossipState) {}

  /** True when the periodic gossip is due. */
  due(now: number): boolean {
    return now - this.lastSent > GOSSIP_EVERY;
  }

  /** Tells every peer what this node knows: nodes (for discovery) and its own links (for topology views). */
  send(): void {
    this.lastSent = Date.now();
    const links = [...this.s.byPeer.keys()];
    // Only nodes we are linked to right now: a node that died (and perhaps came back
    // under a new id at the same address) must not live on in everyone's gossip.
    const live = [this.s.self, ...[...this.s.byPeer.values()].map((l) => l.peer!)];
    for (const l of this.s.byPeer.values()) {
      const peers = live.filter((p) => p.id !== l.peer!.id);
      l.sendControl(FrameType.PEERS, { from: this.s.self.id, peers, links });
    }
  }

  /** Every link known in the mesh: this node's own and those its peers reported. */
  links(): LinkView[] {
    const out: LinkView[] = [];
    const seen = new Set<string>();
    const add = (a: string, b: string, v: Omit<LinkView, 'from' | 'to'>): void => {
      const key = a < b ? `${a}|${b}` : `${b}|${a}`;
      if (seen.has(key)) return;
      seen.add(key);
      out.push({ from: a, to: b, ...v });
    };
    for (const [id, l] of this.s.byPeer) add(this.s.self.id, id, { state: 'up', rttMs: l.rttMs });
    const fresh = Date.now() - 4 * GOSSIP_EVERY;
    for (const [from, r] of this.remoteLinks) {
      if (r.at < fresh || !this.s.byPeer.has(from)) continue;
      for (const to of r.peers) add(from, to, { state: 'up' });
    }
    return out;
  }

  /**
   * The link to `peerId` went down: its gossiped links are no longer shown (links() skips
   * them) and are forgotten, or every node id that ever linked (a restarted node comes
   * back under a new one) would keep up to maxKnownPeers ids here for ever.
   */
  peerGone(peerId: string): void {
    this.remoteLinks.delete(peerId);
  }

  /**
   * The redialer gave `address` up: a node once known there is gone (a node restarted
   * elsewhere comes back under a new id) and is forgotten, not listed 'down' for ever;
   * 1,024 such (maxKnownPeers) and gossip learned no new node at all.
   * `linkedToo`: the node is known to be gone (ClusterNode.forgetAddress), so
   * it is forgotten also while its link is still up (its closing not seen yet).
   */
  addressGivenUp(address: string, linkedToo = false): void {
    for (const [id, p] of this.s.known) if (p.cluster === address && (linkedToo || !this.s.byPeer.has(id))) this.s.known.delete(id);
  }

  /**
   * A link to `peer` is up (dialed at `target`, when this node dialed it): it
   * is known from now on. Whoever answered at an address owns it now: a node
   * known there before under another id (it restarted) is gone. At most
   * maxKnownPeers are kept: past it the oldest node not linked now is
   * forgotten. Before, every node that ever linked was kept: a partial mesh
   * neither redials a node that dialed it nor gives its address up, so one
   * entry per node that came and went stayed for ever (listed 'down').
   */
  linked(peer: PeerInfo, target: string | undefined): void {
    const { known, byPeer, options } = this.s;
    for (const [id, p] of known) if (id !== peer.id && (p.cluster === peer.cluster || p.cluster === target)) known.delete(id);
    known.set(peer.id, peer);
    if (known.size <= options.maxKnownPeers) return;
    for (const id of known.keys()) {
      if (id === peer.id || byPeer.has(id)) continue;
      known.delete(id);
      return;
    }
  }

  /** Nodes whose gossiped links are remembered (at most the peers linked now). */
  get remembered(): number {
    return this.remoteLinks.size;
  }

  /** A PEERS frame from `link`: the nodes it knows, and its own links. */
  received(link: PeerLink, body: Record<string, unknown>): void {
    this.onPeers(link, body);
    if (link.peer && Array.isArray(body.links)) {
      // Node ids only, at most as many as we keep nodes: these become edges in /v1/cluster.
      const ids = body.links.slice(0, this.s.options.maxKnownPeers).filter(isNodeId);
      this.remoteLinks.set(link.peer.id, { peers: ids, at: Date.now() });
    }
  }

  /**
   * Gossip from an authenticated peer. Each entry is checked (peer-info.ts):
   * a bad one is skipped, logged and answered with a non-fatal ERROR
   * MB_ERR_BAD_PEER_INFO (one per frame); the link stays. At most
   * maxKnownPeers entries are read and kept.
   */
  private onPeers(link: PeerLink, body: Record<string, unknown>): void {
    const { options, known, logger } = this.s;
    const entries = Array.isArray(body.peers) ? body.peers.slice(0, options.maxKnownPeers) : [];
    let bad: PeerInfoError | undefined;
    let badCount = 0;
    for (const p of entries) {
      let info: PeerInfo;
      try {
        info = parsePeerInfo(p);
      } catch (e) {
        if (!(e instanceof PeerInfoError)) throw e;
        bad ??= e;
        badCount++;
        continue;
      }
      if (info.id === this.s.self.id) continue;
      // A live link already answers at that address under another id: the gossip is stale.
      if (this.addressTaken(info.cluster, info.id)) continue;
      // An address given up (its node failed, or is known gone: ClusterNode.forgetAddress) is learned again from
      // a link to it only: a peer's gossip can be older than what this node knows (it has not seen its link there
      // close yet), and a node learned here is never dialed, so it stayed listed 'down' for ever.
      if (!known.has(info.id) && this.s.redialer.gaveUp(info.cluster)) continue;
      if (!known.has(info.id)) {
        if (known.size >= options.maxKnownPeers) {
          if (!this.knownFullWarned) logger.warn({ peer: link.peerId, maxKnownPeers: options.maxKnownPeers }, 'gossip names more nodes than maxKnownPeers: ignoring the rest');
          this.knownFullWarned = true;
          continue;
        }
        known.set(info.id, info);
      }
      // A full mesh dials every node it hears of; a partial mesh only its seeds.
      if (options.mode === 'full' && !this.s.byPeer.has(info.id)) this.s.redialer.want(info.cluster, false);
    }
    if (bad) {
      // Per peer and code: the message names a gossiped node id the peer chose (a fresh one per frame was a line per frame).
      if (this.refusalsTold.due(`${link.peerId} ${bad.code}`, undefined, bad.code)) {
        logger.warn({ peer: link.peerId, code: bad.code, refused: badCount, err: bad.message }, 'refused gossiped peer info (said again at most every 5 min)');
      }
      link.sendError(bad.code, 0, `${badCount} gossiped peer entr${badCount === 1 ? 'y' : 'ies'} refused: ${bad.message}`);
    }
  }

  private addressTaken(addr: string, id: string): boolean {
    for (const [peerId, l] of this.s.byPeer) if (peerId !== id && (l.peer!.cluster === addr || l.target === addr)) return true;
    return false;
  }
}
