import type { Socket } from 'node:net';
import { FrameType, decodeBody, type Frame } from '@meshbus/proto';
import { ConfigError, type ClusterView, type LinkView, type MeshNode, type Receivers } from '@meshbus/core';
import { DedupWindow } from './dedup-window.js';
import { InterestExchange } from './interest-exchange.js';
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from './options.js';
import { PeerLink, type LinkHandler, type LinkSettings } from './peer-link.js';
import { clusterAddressProblem, nameProblem, type PeerInfo } from './peer-info.js';
import { Redialer } from './redialer.js';
import { PeerPort } from './peer-port.js';
import { Gossip } from './gossip.js';

/** One peer as the cluster sees it, for views and metrics. */
export interface PeerStatus {
  id: string;
  name: string;
  address: string;
  client: string;
  state: 'connecting' | 'up' | 'down';
  rttMs: number | undefined;
  since: number;
  msgsIn: number;
  msgsOut: number;
}

/**
 * Makes a MeshNode part of a mesh: listens for peer links, dials seeds and
 * gossiped peers, exchanges interest, and routes events that arrive from
 * peers. There is no leader: every node runs the same code and any subset
 * keeps routing when others die.
 */
export class ClusterNode implements LinkHandler, ClusterView {
  readonly options: ResolvedClusterOptions;
  readonly self: PeerInfo;
  /** The cluster port: listening, dialing, pre-auth bounds. */
  private readonly peerPort: PeerPort;
  private readonly gossip: Gossip;
  private readonly allLinks = new Set<PeerLink>();
  /** Up links by peer node id (at most one per peer). */
  private readonly byPeer = new Map<string, PeerLink>();
  private readonly interest: InterestExchange;
  /** Every node heard of, by id: dial targets in a full mesh and failover URLs for clients. */
  private readonly known = new Map<string, PeerInfo>();
  private readonly redialer: Redialer;
  private readonly dedup = new DedupWindow();
  private readonly settings: LinkSettings;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Which node each address we dialed led to (seeds, proxies, DNS names): redialed when that node's link dies. */
  private readonly dialedPeer = new Map<string, string>();
  /** Highest sequence delivered per origin node (full mesh), for inOrder(). */
  private readonly lastSeq = new Map<string, number>();
  /** Events dropped because an older copy arrived after a newer one from the same node (full mesh). */
  reorderedDropped = 0;
  /** Copies of an event dropped because it was seen before (partial mesh). */
  duplicatesDropped = 0;
  /** Events from peers dropped because their extension block is malformed (SPEC §8). */
  badPeerEvents = 0;
  private stopped = false;
  /** Gate key of each accepted link still in its handshake. */
  private readonly gateKey = new WeakMap<PeerLink, string>();

  constructor(
    readonly node: MeshNode,
    options: ClusterOptions = {},
  ) {
    this.options = resolveClusterOptions(options);
    // Peers refuse a node whose name breaks the rule they check (peer-info.ts): say so now.
    const np = nameProblem(node.options.name);
    if (np) throw new ConfigError(`node name cannot be used in a cluster: ${np}`);
    this.interest = new InterestExchange(node, this.options.mode === 'partial', this.options.maxPeerInterest);
    this.self = {
      id: node.id,
      name: node.options.name,
      cluster: '',
      client: this.options.clientAdvertise ?? `${node.host}:${node.port}`,
    };
    this.settings = {
      self: this.self,
      secret: this.options.secret,
      pingInterval: this.options.pingInterval,
      handshakeTimeout: this.options.handshakeTimeout,
      maxPending: this.options.maxPending,
      maxStall: node.options.maxStall,
      maxFrameLength: node.maxFrameLength,
      scanner: node.scanner,
      logger: node.logger,
    };
    this.peerPort = new PeerPort(this.options, node.logger, (s, key) => this.accepted(s, key));
    this.redialer = new Redialer({
      min: this.options.redialMin,
      max: this.options.redialMax,
      giveUpAfter: this.options.redialGiveUp,
      maxLearned: this.options.maxKnownPeers,
      dial: (addr) => this.dial(addr),
      note: (event, addr, reason) =>
        event === 'gave-up'
          ? node.logger.warn({ address: addr, reason }, 'gave up dialing a gossiped peer address: it never authenticated')
          : node.logger.warn({ address: addr, reason }, 'not dialing more gossiped peer addresses'),
    });
    this.gossip = new Gossip({ self: this.self, options: this.options, logger: node.logger, byPeer: this.byPeer, known: this.known, redialer: this.redialer });
  }

  /** Peer connections accepted that have not authenticated yet. */
  get pendingHandshakes(): number {
    return this.peerPort.pending;
  }

  /** Peer connections refused because the pre-auth bounds were reached, since start. */
  get refusedConnections(): number {
    return this.peerPort.refused;
  }

  get port(): number {
    return this.peerPort.port;
  }

  get mode(): 'full' | 'partial' {
    return this.options.mode;
  }

  /** Listens on the cluster port, hooks into the node and dials the seeds. */
  async start(): Promise<this> {
    const o = this.options;
    const bound = await this.peerPort.listen();
    this.self.cluster = o.advertise ?? `${o.host.includes(':') ? `[${o.host}]` : o.host}:${bound}`;
    // Peers check the address they are told (peer-info.ts) and would refuse this node.
    const ap = clusterAddressProblem(this.self.cluster);
    if (ap) {
      await this.peerPort.close();
      throw new ConfigError(`advertised cluster address "${this.self.cluster}": ${ap}`);
    }
    if (o.secret === undefined) {
      this.node.logger.warn({}, 'no cluster secret configured: any node that can reach the cluster port may join (set --cluster-secret in production)');
    }
    this.node.hooks.peers = () => this.clientUrls();
    this.interest.start();
    this.timer = setInterval(() => this.tick(), Math.max(20, o.pingInterval / 4));
    this.timer.unref();
    for (const seed of o.seeds) this.redialer.want(seed, true);
    this.node.logger.info({ clusterPort: bound, mode: o.mode, seeds: o.seeds }, 'cluster listening');
    return this;
  }

  /** Client URLs of the nodes this one is linked to (for WELCOME and GOODBYE). */
  clientUrls(): string[] {
    const urls: string[] = [];
    for (const l of this.byPeer.values()) if (l.peer) urls.push(l.peer.client);
    return urls;
  }

  /** True once every seed was tried and at least one link is up (or no seeds were given). */
  ready(): boolean {
    return this.options.seeds.length === 0 || this.byPeer.size > 0;
  }

  peers(): PeerStatus[] {
    const out: PeerStatus[] = [];
    const seen = new Set<string>();
    // Only authenticated links: a connection that merely claimed a name is never shown.
    for (const l of this.allLinks) {
      if (!l.peer || l.state !== 'up') continue;
      seen.add(l.peer.id);
      out.push({
        id: l.peer.id,
        name: l.peer.name,
        address: l.peer.cluster,
        client: l.peer.client,
        state: 'up',
        rttMs: l.rttMs,
        since: l.since,
        msgsIn: l.msgsIn,
        msgsOut: l.msgsOut,
      });
    }
    for (const p of this.known.values()) {
      if (seen.has(p.id)) continue;
      out.push({ id: p.id, name: p.name, address: p.cluster, client: p.client, state: 'down', rttMs: undefined, since: 0, msgsIn: 0, msgsOut: 0 });
    }
    return out;
  }

  /** Up link to a peer node, if any. */
  link(peerId: string): PeerLink | undefined {
    return this.byPeer.get(peerId);
  }

  // ---- links ----

  private accepted(socket: Socket, gateKey: string): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const link = new PeerLink(socket, 'acceptor', this.settings, this);
    this.gateKey.set(link, gateKey);
    this.allLinks.add(link);
  }

  /** The link authenticated or closed: its pre-auth slot is free. */
  private leftHandshake(link: PeerLink): void {
    const key = this.gateKey.get(link);
    if (key === undefined) return;
    this.gateKey.delete(link);
    this.peerPort.release(key);
  }

  /** Dials `addr`; every socket that connects becomes a dialer link. Resolves when the attempt ended. */
  private dial(addr: string): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    return this.peerPort.dial(addr, (socket) => {
      const link = new PeerLink(socket, 'dialer', this.settings, this);
      link.target = addr;
      this.allLinks.add(link);
    });
  }

  linkUp(link: PeerLink): void {
    this.leftHandshake(link);
    const peer = link.peer!;
    if (peer.id === this.self.id) {
      // A seed list that names this node itself (one list for every node): stop dialing it.
      if (link.target) this.redialer.connected(link.target);
      link.close('linked to itself');
      return;
    }
    // A link to this peer is up, whichever one survives below: stop dialing it at
    // every address it is known by (its advertised one and, through a proxy or a
    // DNS seed, the one we dialed). Otherwise the redialer keeps making links
    // that are then closed as duplicates, forever.
    this.redialer.connected(peer.cluster);
    if (link.target) {
      this.redialer.connected(link.target);
      this.dialedPeer.set(link.target, peer.id);
    }
    const existing = this.byPeer.get(peer.id);
    if (existing) {
      // A link that has been silent past a ping round is suspect (stalled, or its
      // other end already gave up on it): the new one replaces it, and whatever
      // the old one still delivers is ignored from now on, so old and new events
      // never interleave. Otherwise both sides dialed at once: keep the link
      // dialed by the smaller node id, on both ends.
      const stale = existing.silentFor(Date.now()) > 1.5 * this.options.pingInterval;
      const keepNew = stale || (link.role === 'dialer') === this.self.id < peer.id;
      if (!keepNew) {
        link.close('duplicate link');
        return;
      }
    }
    // Point at the new link before closing the old one, so linkDown sees the old one as stale and does not redial.
    this.byPeer.set(peer.id, link);
    existing?.close('replaced by a newer link');
    // Whoever answered at an address owns it now: a node known there before under
    // another id (it restarted) is gone.
    for (const [id, p] of this.known) if (id !== peer.id && (p.cluster === peer.cluster || p.cluster === link.target)) this.known.delete(id);
    this.known.set(peer.id, peer);
    this.node.logger.info({ peer: peer.id, peerName: peer.name, address: peer.cluster, role: link.role }, 'peer link up');
    // Snapshot of our interest, then what we know of the mesh.
    this.interest.linkUp(link);
    this.gossip.send();
  }

  /** Every link known in the mesh: this node's own and those its peers reported. */
  links(): LinkView[] {
    return this.gossip.links();
  }

  linkDown(link: PeerLink, reason: string): void {
    this.leftHandshake(link);
    this.allLinks.delete(link);
    const peerId = link.peer?.id;
    const current = peerId !== undefined && this.byPeer.get(peerId) === link;
    if (current) {
      this.byPeer.delete(peerId);
      // Nothing more arrives from that link; a node that comes back under the same
      // configured id starts its sequence again and must not be taken for old news.
      this.lastSeq.delete(peerId);
    }
    this.interest.linkDown(link);
    if (current) this.gossip.send();
    if (current) {
      this.node.logger.info({ peer: peerId, reason }, 'peer link down');
      if (!this.stopped) this.redialPeer(link.peer!);
    }
    // A link we dialed that never authenticated: a failure of that address (the
    // redialer tries again with backoff, and gives a gossiped address up after a
    // bounded number of failures, or at once if the secret was refused either way).
    if (!this.stopped && !link.peer && link.target) {
      const refused = link.failCode === 'MB_ERR_AUTH_FAILED';
      if (!this.redialer.wants(link.target) && this.options.seeds.includes(link.target)) this.redialer.want(link.target, true);
      this.redialer.failed(link.target, link.failCode ? `${link.failCode}: ${reason}` : reason, refused);
    }
  }

  /**
   * The link to `peer` is gone: dial again every address we reached it at
   * (seeds, which may be proxies or DNS names) and, in a full mesh, the
   * address it advertises.
   */
  private redialPeer(peer: PeerInfo): void {
    for (const [target, id] of this.dialedPeer) {
      if (id === peer.id) this.redialer.want(target, this.options.seeds.includes(target));
    }
    if (this.options.mode === 'full') this.redialer.want(peer.cluster, this.options.seeds.includes(peer.cluster));
  }

  peerControl(link: PeerLink, f: Frame): void {
    const body = decodeBody(f.payload);
    switch (f.type) {
      case FrameType.INTEREST:
        this.interest.received(link, body);
        return;
      case FrameType.PEERS:
        this.gossip.received(link, body);
        return;
      default:
        this.node.logger.debug({ peer: link.peerId, type: f.typeName }, 'ignored frame from peer');
    }
  }

  // ---- events from peers ----

  peerEvent(link: PeerLink, f: Frame): void {
    // A peer may be buggy or compromised: its events pass the node's ingress checks (the
    // same as a client's, except that a position stamped by the storing node is allowed).
    let route: Receivers;
    try {
      route = this.node.forwardedIngress(f);
    } catch (e) {
      this.badPeerEvents++;
      this.node.logger.debug({ peer: link.peer?.id, err: String((e as Error).message) }, 'malformed event from peer dropped');
      return;
    }
    const partial = this.options.mode === 'partial';
    const sid = f.sid;
    // An event passed on by a node whose queue member had ended (hops 2, memberGone) is out of its origin's order anyway.
    if (!partial && f.hops < 2 && !this.inOrder(link, f.seq)) {
      this.reorderedDropped++;
      return;
    }
    if (sid === 0) {
      if (partial && !this.dedup.firstTime(f.origin, f.seq)) {
        this.duplicatesDropped++;
        return;
      }
      // None here: the subscription it was sent for ended (max reached, UNSUB) before the peer heard.
      if (this.node.deliver(f, route, link, !partial) === 0) this.node.stats.noInterest++;
      return;
    }
    // A queue-group event: the sid is the id we announced to this peer for (pattern, group).
    const { known, queue } = this.interest.queueFor(link, sid);
    if (!known || queue === undefined) {
      this.node.stats.dropped.noQueueMember++;
      return;
    }
    if (!this.node.deliverToGroup(f, route, queue, link, !partial)) this.memberGone(f, route, queue);
  }

  /**
   * A queue-group event for `queue` reached this node after its last member
   * here ended — reached its `max` or unsubscribed while the peer, not yet
   * told, was sending (SPEC 10.3). As with NATS, the ended member never gets
   * it. In a full mesh it goes on once to a member on another node (the
   * sender included, if it has one now): an event already passed on (hops
   * ≥ 2) is not passed again. Otherwise it is counted as dropped
   * (`dropped.noQueueMember`, meshbus_dropped_total{reason="no_queue_member"}).
   */
  private memberGone(f: Frame, route: Receivers, queue: string): void {
    if (this.options.mode === 'full' && f.hops < 2) {
      const g = route.groups.find((x) => x.name === queue);
      const m = g && g.remote.length > 0 ? this.node.table.pick({ name: queue, local: [], remote: g.remote }) : undefined;
      if (m) {
        m.owner.deliver(f, m.sid);
        return;
      }
    }
    this.node.stats.dropped.noQueueMember++;
  }

  /**
   * In a full mesh every event on a link from X was stamped by X, with X's
   * increasing sequence. Two links to X can briefly coexist (one replacing a
   * stalled one), and an event still in flight on the old one must not overtake
   * newer ones: per-publisher order wins over delivery (at-most-once allows the
   * drop, not the reorder). Copies with the same sequence (a plain and a
   * queue-group copy of one event) pass.
   */
  private inOrder(link: PeerLink, seq: number): boolean {
    const id = link.peer!.id;
    const last = this.lastSeq.get(id) ?? 0;
    if (seq < last) return false;
    if (seq > last) this.lastSeq.set(id, seq);
    return true;
  }

  private tick(): void {
    const now = Date.now();
    if (this.gossip.due(now)) this.gossip.send();
    for (const l of this.allLinks) l.tick(now, this.node.options.maxStall);
  }

  /** Leaves the mesh: says goodbye on every link and stops dialing. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.redialer.stop();
    this.interest.stop();
    if (this.timer) clearInterval(this.timer);
    for (const l of [...this.allLinks]) l.goodbye('MB_ERR_DRAINING', 'node leaving');
    await this.peerPort.close();
  }
}
