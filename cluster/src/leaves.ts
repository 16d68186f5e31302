import { throttled, type Logger } from '@meshbus/core';
import type { ResolvedClusterOptions } from './options.js';
import type { PeerLink } from './peer-link.js';
import type { Redialer } from './redialer.js';
import { keepsNewLink } from './topology-rules.js';
import { LinkStateLog } from './link-state-log.js';
import { leafImpersonates } from './origin-rules.js';

/** What the leaf rules need of the ClusterNode they serve. */
export interface LeafHost {
  options: ResolvedClusterOptions;
  logger: Logger;
  redialer: Redialer;
  /** Up links to peer nodes by id (a leaf's: its hub). */
  byPeer: ReadonlyMap<string, PeerLink>;
  /** This node's id (which of two links to one node both ends keep). */
  selfId: string;
  /** Nodes of the mesh learned by gossip, by id. */
  known: ReadonlyMap<string, unknown>;
}

/**
 * Leaf nodes (cluster/README.md, "Leaf nodes"), both ends. On a hub: the
 * links of the leaves hanging off it, kind 'leaf', never gossiped nor
 * dialed. On a leaf: one hub link at a time, the others of its seeds kept for
 * failover. (The links that would loop are refused before, topology-rules.ts.)
 */
export class Leaves {
  /** On a hub: up links of leaf nodes, by leaf node id. */
  private readonly links = new Map<string, PeerLink>();
  /** Leaf link up/down lines, per key label (or id without a key): at most one a minute, the last one true. */
  private readonly upDown: LinkStateLog;

  constructor(private readonly h: LeafHost) {
    this.upDown = new LinkStateLog(h.logger);
  }

  private get isLeaf(): boolean {
    return this.h.options.mode === 'leaf';
  }

  /**
   * A link authenticated and passed topologyProblem: 'refused' (a duplicate, or a leaf's second hub: closed),
   * 'leaf' (a hub's new leaf, set up here: the caller announces interest), or
   * 'peer' (a link of the mesh, or a leaf's hub, for the caller to keep).
   */
  linkUp(link: PeerLink): 'leaf' | 'refused' | 'peer' {
    const peer = link.peer!;
    const o = this.h.options;
    if (peer.leaf && o.mode === 'full') {
      link.kind = 'leaf';
      if (leafImpersonates(peer.id, this.h)) {
        throttled(this.h.logger).warn({ leaf: peer.id, leafName: peer.name, remote: link.remote, code: 'MB_ERR_BAD_PEER_INFO' }, 'leaf link refused: its id is a node of this mesh', 'leaf id of a mesh node');
        link.fail('MB_ERR_BAD_PEER_INFO', `node id ${peer.id} is a node of this mesh: a leaf needs an id of its own`);
        return 'refused';
      }
      const existing = this.links.get(peer.id);
      // The leaf decides by the same rule (the mesh's): otherwise each end could close the link the other keeps, forever.
      if (existing && !keepsNewLink(this.h.selfId, link, existing, o.pingInterval)) {
        link.close('duplicate link');
        return 'refused';
      }
      // A link of its own per leaf holds a copy of all the interest the hub announces to it: bounded in number.
      // Logged here at most once a minute (not by the link: a leaf of a fresh id per attempt was a line each).
      if (existing === undefined && this.full(link)) return 'refused';
      this.links.set(peer.id, link);
      existing?.close('replaced by a newer link');
      this.upDown.changed(peer.keyLabel ?? peer.id, 'leaf link up', { leaf: peer.id, leafName: peer.name, remote: link.remote, linksUp: this.linksUp(link) });
      return 'leaf';
    }
    if (this.isLeaf) {
      // One hub at a time: its seeds are the hubs it may fail over to, not a mesh to join.
      const hub = this.h.byPeer.values().next().value;
      if (hub !== undefined && hub.peer!.id !== peer.id) {
        link.close('a leaf keeps one hub link');
        return 'refused';
      }
      for (const s of o.seeds) this.h.redialer.connected(s, s === link.target);
    }
    return 'peer';
  }

  /**
   * Whether a new leaf link is past maxLeafLinks, or its key label past
   * maxLeafLinksPerKey (a key holder makes a fresh id per salt): then
   * refused, MB_ERR_TOO_MANY_CONNECTIONS, logged at most once a minute.
   */
  private full(link: PeerLink): boolean {
    const o = this.h.options;
    const { id, name, keyLabel } = link.peer!;
    const fields = { leaf: id, leafName: name, remote: link.remote, code: 'MB_ERR_TOO_MANY_CONNECTIONS' };
    if (this.links.size >= o.maxLeafLinks) {
      throttled(this.h.logger).warn({ ...fields, maxLeafLinks: o.maxLeafLinks }, 'leaf link refused: maxLeafLinks reached', 'leaf links full');
      link.fail('MB_ERR_TOO_MANY_CONNECTIONS', `this hub already has ${this.links.size} leaf links (maxLeafLinks ${o.maxLeafLinks})`);
      return true;
    }
    if (keyLabel === undefined) return false;
    const n = this.linksUp(link);
    if (n < o.maxLeafLinksPerKey) return false;
    const limit = { keyLabel, maxLeafLinksPerKey: o.maxLeafLinksPerKey };
    throttled(this.h.logger).warn({ ...fields, ...limit }, 'leaf link refused: maxLeafLinksPerKey reached', 'leaf key links full', keyLabel);
    link.fail('MB_ERR_TOO_MANY_CONNECTIONS', `this hub already has ${n} leaf links of key ${keyLabel} (maxLeafLinksPerKey ${o.maxLeafLinksPerKey})`);
    return true;
  }

  /** Whether `id` is a leaf linked to this hub. */
  has(id: string): boolean {
    return this.links.has(id);
  }

  /** On a hub: the up link of leaf node `id`. */
  link(id: string): PeerLink | undefined {
    return this.links.get(id);
  }

  /** A hub's leaf link closed. */
  leafDown(link: PeerLink, reason: string): void {
    const id = link.peer!.id;
    if (this.links.get(id) !== link) return;
    this.links.delete(id);
    this.upDown.changed(link.peer!.keyLabel ?? id, 'leaf link down', { leaf: id, reason, linksUp: this.linksUp(link) });
  }

  /**
   * Up links of `link`'s party: of its key label, else of its leaf id (0 or 1). Said on each up/down
   * line: several leaves may share a key, so "down" alone does not tell the party's state.
   */
  private linksUp(link: PeerLink): number {
    const { id, keyLabel } = link.peer!;
    if (keyLabel === undefined) return this.links.has(id) ? 1 : 0;
    let n = 0;
    for (const l of this.links.values()) if (l.peer!.keyLabel === keyLabel) n++;
    return n;
  }

  /** A leaf lost its hub: any of its seeds will do, the one that answers first. */
  hubDown(): void {
    for (const s of this.h.options.seeds) this.h.redialer.want(s, true);
  }
}
