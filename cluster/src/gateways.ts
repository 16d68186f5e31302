import { ToldRecently, throttled, type Logger } from '@meshbus/core';
import type { ResolvedClusterOptions } from './options.js';
import type { PeerLink } from './peer-link.js';
import type { Redialer } from './redialer.js';

/** What the gateway bookkeeping needs of the ClusterNode it serves. */
export interface GatewayHost {
  options: ResolvedClusterOptions;
  logger: Logger;
  redialer: Redialer;
  /** Refuses a link that would join regions wrongly (ERROR MB_ERR_TOPOLOGY, logged). */
  refuse(link: PeerLink, why: string): void;
}

/**
 * Gateway links between regions (cluster/README.md, "Gateways"). Each node
 * dials one node of every other region it is given (`gateways`), keeping one
 * link per region and failing over between that region's addresses; it sends
 * its own events (those that enter the mesh at this node) over the links it
 * dialed, and takes other regions' events in over the links it accepted. So
 * each direction of a pair of nodes has one user, and an event crosses at most
 * one gateway: one that came from another region goes no further than this
 * region (DeliveryScope 'region').
 */
export class Gateways {
  /** The link this node dialed to each remote region. */
  private readonly out = new Map<string, PeerLink>();
  /** Links other regions' nodes dialed to this one. */
  private readonly in = new Set<PeerLink>();
  /**
   * Peers without a region (this node has one) and regions that dial this
   * node without it having gateways to them: each said at most every 5 min
   * (region names are the dialer's: a set of them grew by one per name).
   */
  private readonly told = new ToldRecently(5 * 60_000);
  /** Links already warned about for being used the wrong way. */
  private readonly warned = new WeakSet<PeerLink>();
  /** Gateway address → its region. */
  private readonly targets = new Map<string, string>();

  constructor(private readonly h: GatewayHost) {
    for (const [region, addrs] of Object.entries(h.options.gateways)) for (const a of addrs) this.targets.set(a, region);
  }

  /** Starts dialing every region. */
  start(): void {
    for (const region of Object.keys(this.h.options.gateways)) this.dialRegion(region);
  }

  /** The region `addr` is a gateway address of, if it is one. */
  regionOf(addr: string): string | undefined {
    return this.targets.get(addr);
  }

  /** Whether the link is a gateway link, and if not, whether it may be a peer link of this region. */
  linkUp(link: PeerLink): 'gateway' | 'refused' | 'peer' {
    const peer = link.peer!;
    const mine = this.h.options.region;
    const expected = link.role === 'dialer' && link.target !== undefined ? this.targets.get(link.target) : undefined;
    if (expected !== undefined) {
      if (peer.region !== expected) {
        this.h.refuse(link, `${link.target} is a gateway address of region ${expected}, but the node there is in region ${peer.region ?? '(none)'}`);
        return 'refused';
      }
      const current = this.out.get(expected);
      if (current !== undefined && current !== link) {
        link.close('one gateway link per region');
        return 'refused';
      }
      this.adopt(link, expected);
      this.out.set(expected, link);
      for (const a of this.h.options.gateways[expected] ?? []) this.h.redialer.connected(a, a === link.target);
      this.h.logger.info({ region: expected, peer: peer.id, peerName: peer.name, address: link.target, direction: 'out' }, 'gateway link up');
      return 'gateway';
    }
    if (link.role === 'acceptor' && peer.gateway) {
      if (mine === undefined) {
        this.h.refuse(link, 'this node has no region: it takes no gateway links (set --region)');
        return 'refused';
      }
      if (peer.region === undefined || peer.region === mine) {
        this.h.refuse(link, `a gateway link joins two regions, but both nodes are in region ${mine}`);
        return 'refused';
      }
      // One link per remote node (a second replaces the first), and a bound: each holds a copy of this node's interest.
      const same = [...this.in].find((l) => l.peer!.id === peer.id);
      if (same === undefined && this.in.size >= this.h.options.maxGatewayLinks) {
        throttled(this.h.logger).warn({ region: peer.region, peer: peer.id, remote: link.remote, code: 'MB_ERR_TOO_MANY_CONNECTIONS', maxGatewayLinks: this.h.options.maxGatewayLinks }, 'gateway link refused: maxGatewayLinks reached', 'gateway links full');
        link.fail('MB_ERR_TOO_MANY_CONNECTIONS', `this node already has ${this.in.size} gateway links in (maxGatewayLinks ${this.h.options.maxGatewayLinks})`);
        return 'refused';
      }
      this.adopt(link, peer.region);
      this.in.add(link);
      if (same !== undefined) {
        this.in.delete(same);
        same.close('replaced by a newer link');
      }
      // Gateways must be full: this region's events reach another only over links this region's nodes dial.
      if (this.h.options.gateways[peer.region] === undefined && this.told.due(peer.region, Date.now(), 'region without gateways')) {
        this.h.logger.warn({ region: peer.region, peer: peer.id, peerName: peer.name }, `region ${peer.region} dials this node, but this node has no --gateways for it: events that enter the mesh here never reach ${peer.region}`);
      }
      this.h.logger.info({ region: peer.region, peer: peer.id, peerName: peer.name, remote: link.remote, direction: 'in' }, 'gateway link up');
      return 'gateway';
    }
    if (mine !== undefined && peer.region !== undefined && peer.region !== mine) {
      // Seeds that point into another region would merge two meshes into one.
      this.h.refuse(link, `a peer link between regions ${mine} and ${peer.region}: join regions with --gateways`);
      return 'refused';
    }
    // Not refused (a mesh moving to regions restarts its nodes one by one), but it routes only half-way.
    if (mine !== undefined && peer.region === undefined && this.told.due(peer.id, Date.now(), 'peer without region')) {
      this.h.logger.warn({ peer: peer.id, peerName: peer.name, region: mine }, `peer ${peer.name || peer.id} has no --region while this node is in region ${mine}: events published on it never reach other regions (give it --region ${mine} and --gateways)`);
    }
    return 'peer';
  }

  /** A gateway link is gone: a lost outbound one is replaced by dialing its region again. */
  linkDown(link: PeerLink, reason: string): void {
    const region = link.region!;
    if (this.in.delete(link)) {
      this.h.logger.info({ region, peer: link.peer?.id, reason, direction: 'in' }, 'gateway link down');
      return;
    }
    if (this.out.get(region) !== link) return;
    this.out.delete(region);
    this.h.logger.info({ region, peer: link.peer?.id, reason, direction: 'out' }, 'gateway link down');
    this.dialRegion(region);
  }

  /**
   * True when `link` is a gateway link used the wrong way, which the caller then
   * ignores (a bug or a hostile node; logged once per link). Events come in only
   * over links the other region dialed: an event taken in over a link this node
   * dialed would reach this region twice. Interest comes in only over links this
   * node dialed: interest announced over a link the other region dialed would
   * have this node send events back over it, a second path (duplicates there).
   * `body`: the INTEREST frame's (the dialer's empty snapshot at link up is fine).
   */
  wrongWay(link: PeerLink, what: 'events' | 'interest', body?: Record<string, unknown>): boolean {
    if (link.kind !== 'gateway' || (link.role === 'dialer') !== (what === 'events')) return false;
    if (what === 'interest' && !(Array.isArray(body?.add) && body.add.length > 0)) return true;
    if (!this.warned.has(link)) {
      this.warned.add(link);
      this.h.logger.warn({ peer: link.peer?.id, region: link.region, what }, `ignored ${what} sent the wrong way over a gateway link (events travel over the link their sender dialed, interest the other way)`);
    }
    return true;
  }

  /** Regions this node has an outbound gateway link to, for views. */
  linkedRegions(): string[] {
    return [...this.out.keys()];
  }

  private adopt(link: PeerLink, region: string): void {
    link.kind = 'gateway';
    link.region = region;
  }

  private dialRegion(region: string): void {
    for (const a of this.h.options.gateways[region] ?? []) this.h.redialer.want(a, true);
  }
}
