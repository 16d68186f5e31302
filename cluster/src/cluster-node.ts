import type { Socket } from 'node:net';
import { FrameType, hostPort, type Frame } from '@meshbus/proto';
import { ConfigError, ToldRecently, type ClusterView, type DeliveryScope, type LinkView, type MeshNode, type Receivers } from '@meshbus/core';
import { DedupWindow } from './dedup-window.js';
import { InterestExchange } from './interest-exchange.js';
import type { ClusterOptions, MeshMode, ResolvedClusterOptions } from './options.js';
import { checkClusterOptions } from './option-checks.js';
import { PeerLink, type LinkHandler, type LinkSettings } from './peer-link.js';
import { linkSettings } from './link-settings.js';
import { clusterAddressProblem, type PeerInfo } from './peer-info.js';
import { REPORT_EVERY, Redialer, sayRedialNote, type RedialEvent, type RedialNote } from './redialer.js';
import { PeerPort } from './peer-port.js';
import { Gossip } from './gossip.js';
import { Gateways } from './gateways.js';
import { Leaves } from './leaves.js';
import { leafKeyInfo } from './leaf-keys.js';
import { impossibleOrigin, type RegionView } from './origin-rules.js';
import { OriginOrder } from './origin-order.js';
import { PayloadLimits } from './payload-limits.js';
import { keepsNewLink, topologyProblem } from './topology-rules.js';
import { peerStatuses, type PeerStatus } from './peer-status.js';
import { peerBody } from './peer-bodies.js';
import { DialedPeers } from './dialed-peers.js';
import { announcedId, memberGone, resentCopy } from './member-gone.js';

export type { PeerStatus };

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
  private readonly gateways: Gateways;
  private readonly allLinks = new Set<PeerLink>();
  /** Up links by peer node id (at most one per peer). A leaf node has at most one: its hub. */
  private readonly byPeer = new Map<string, PeerLink>();
  /** Leaf links (on a hub) and the hub link (on a leaf). */
  private readonly leaves: Leaves;
  private readonly region: RegionView; // as the origin rule sees it (origin-rules.ts)
  private readonly interest: InterestExchange;
  /** Every node heard of, by id: dial targets in a full mesh and failover URLs for clients. */
  private readonly known = new Map<string, PeerInfo>();
  private readonly redialer: Redialer;
  private readonly dedup = new DedupWindow();
  private readonly settings: LinkSettings;
  /** Topology refusals said recently (by us or the peer), per peer and reason. */
  private readonly refusalsTold = new ToldRecently(REPORT_EVERY);
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Which node each address we dialed led to (seeds, proxies, DNS names): redialed when that node's link dies. */
  private readonly dialedPeer: DialedPeers;
  /** Events over a peer's or this node's maxPayload: skipped, dropped, counted, told (LinkHandler). */
  readonly limits: PayloadLimits;
  /** Per-publisher order through link changes (full mesh, leaves, gateways). */
  private readonly order = new OriginOrder();
  /** Events dropped because an older copy arrived after a newer one from the same node (full mesh). */
  reorderedDropped = 0;
  /** Copies of an event dropped because it was seen before (partial mesh). */
  duplicatesDropped = 0;
  badPeerEvents = 0; // events from peers dropped: malformed extension (SPEC §8), wrong way over a gateway, impossible origin
  /** INTEREST and PEERS bytes sent on links that are closed now (traffic() adds the open ones). */
  private readonly retired = { interestBytesOut: 0, gossipBytesOut: 0 };
  private stopped = false;
  /** When start() ran: readiness stops waiting for seeds `readyWait` ms after it. */
  private startedAt: number | undefined;
  /** Addresses redialed until linked, and again when their link dies: the options' seeds and addSeed's. */
  private readonly seeds: Set<string>;
  /** Seeds that turned out to be this node itself (bounded by the seed list). */
  private readonly selfSeeds = new Set<string>();
  /** Gate key of each accepted link still in its handshake. */
  private readonly gateKey = new WeakMap<PeerLink, string>();

  constructor(
    readonly node: MeshNode,
    options: ClusterOptions = {},
  ) {
    this.options = checkClusterOptions(options, node.options.name, node.id, node.options.nodeIdInClientIds);
    this.seeds = new Set(this.options.seeds);
    this.interest = new InterestExchange(node, this.options.mode === 'partial', this.options.maxPeerInterest, this.options.leafInterestRate);
    this.self = {
      id: node.id,
      name: node.options.name,
      cluster: '',
      client: this.options.clientAdvertise ?? hostPort(node.host, node.port),
      ...(this.options.mode === 'leaf' ? { leaf: true as const } : { mesh: this.options.mode }),
      ...(this.options.region !== undefined ? { region: this.options.region } : {}),
      maxPayload: node.options.maxPayload,
      resentMark: true,
      ...leafKeyInfo(this.options.leafKey),
    };
    Object.defineProperty(this.self, 'ws', { enumerable: true, get: () => node.hooks.wsUrl }); // read at each handshake: a gateway may start later
    this.limits = new PayloadLimits(node);
    this.settings = linkSettings(node, this.options, this.self);
    this.dialedPeer = new DialedPeers((a) => this.seeds.has(a), this.options.seeds.length + this.options.maxKnownPeers);
    this.peerPort = new PeerPort(this.options, node.logger, (s, key) => this.accepted(s, key));
    this.redialer = new Redialer({
      min: this.options.redialMin,
      max: this.options.redialMax,
      giveUpAfter: this.options.redialGiveUp,
      maxLearned: this.options.maxKnownPeers,
      dial: (addr) => this.dial(addr),
      note: (event, addr, d) => this.redialNote(event, addr, d),
    });
    this.gossip = new Gossip({ self: this.self, options: this.options, logger: node.logger, byPeer: this.byPeer, known: this.known, redialer: this.redialer });
    this.region = { selfId: node.id, byPeer: this.byPeer, known: this.known, isLeaf: (id) => this.leaves.has(id) };
    this.leaves = new Leaves({ options: this.options, logger: node.logger, redialer: this.redialer, byPeer: this.byPeer, selfId: node.id, known: this.known });
    this.gateways = new Gateways({ options: this.options, logger: node.logger, redialer: this.redialer, refuse: (l, why) => this.refuseTopology(l, why) });
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

  get mode(): MeshMode {
    return this.options.mode;
  }

  /** Listens on the cluster port, hooks into the node and dials the seeds. */
  async start(): Promise<this> {
    const o = this.options;
    const bound = await this.peerPort.listen();
    this.self.cluster = o.advertise ?? hostPort(o.host, bound);
    // Peers check the address they are told (peer-info.ts) and would refuse this node.
    const ap = clusterAddressProblem(this.self.cluster);
    if (ap) {
      await this.peerPort.close();
      throw new ConfigError(`advertised cluster address "${this.self.cluster}": ${ap}`);
    }
    if (o.secret === undefined && o.leafKey === undefined) this.node.logger.warn({}, 'no cluster secret configured: any node that can reach the cluster port may join (set --cluster-secret in production)');
    this.node.hooks.peers = (kind) => this.clientUrls(kind);
    this.interest.start();
    this.timer = setInterval(() => this.tick(), Math.max(20, o.pingInterval / 4));
    this.timer.unref();
    this.startedAt = Date.now();
    for (const seed of o.seeds) this.redialer.want(seed, true);
    this.gateways.start();
    this.node.logger.info({ clusterPort: bound, mode: o.mode, seeds: o.seeds }, 'cluster listening');
    return this;
  }

  /**
   * Client URLs of the nodes this one is linked to (for WELCOME and GOODBYE). None on a leaf: its
   * clients stay at the edge (their own server list), not sent to the hub's region.
   */
  clientUrls(kind: 'tcp' | 'ws' = 'tcp'): string[] {
    const urls: string[] = [];
    if (this.options.mode === 'leaf') return urls;
    for (const l of this.byPeer.values()) if (l.peer) urls.push((kind === 'ws' && l.peer.ws) || l.peer.client);
    return urls;
  }

  /**
   * True once a link is up, or when there is nothing to wait for: no seeds, every
   * seed led back to this node, or `readyWait` ms passed since start (seeds that
   * never answer, or do not resolve yet, must not keep a node unready forever).
   */
  ready(): boolean {
    return this.joined() || (this.startedAt !== undefined && Date.now() - this.startedAt >= this.options.readyWait);
  }

  /** ready() without the `readyWait` way out: a link is up, or there is nothing to join (/readyz's `joined`). */
  joined(): boolean {
    const o = this.options;
    // A leaf has links only to hubs: one up is all it waits for.
    return o.seeds.length === 0 || this.byPeer.size > 0 || o.seeds.every((s) => this.selfSeeds.has(s));
  }

  /**
   * Dials `addr` from now on as a seed: for a supervisor that learns its
   * sibling nodes' addresses after they start (`meshbus start --workers`).
   * Not a readiness condition (ready() waits for the options' seeds only).
   */
  addSeed(addr: string): void {
    this.seeds.add(addr);
    this.redialer.want(addr, true);
  }

  /**
   * Stops dialing `addr` (a seed or a learned address) until a link to it comes up: a node known to be gone.
   * The node known there is forgotten too, even while its link, not yet seen closing, is up: before, each
   * `--workers` restart (at a new port) left one more 'down' peer in /v1/cluster and meshbus_peer_up, for ever.
   */
  forgetAddress(addr: string): void {
    this.seeds.delete(addr);
    this.redialer.forget(addr);
    this.gossip.addressGivenUp(addr, true);
    this.dialedPeer.givenUp(addr, this.known);
  }

  peers(): PeerStatus[] {
    return peerStatuses(this.allLinks, this.known.values());
  }

  /** Bytes this node sent since start to propagate interest (INTEREST) and to gossip (PEERS), over every link. */
  traffic(): { interestBytesOut: number; gossipBytesOut: number } {
    const t = { ...this.retired };
    for (const l of this.allLinks) {
      t.interestBytesOut += l.interestBytesOut;
      t.gossipBytesOut += l.gossipBytesOut;
    }
    return t;
  }

  /** Up link to a peer node or (on a hub) a leaf node, if any. */
  link(peerId: string): PeerLink | undefined {
    return this.byPeer.get(peerId) ?? this.leaves.link(peerId);
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
    const gateway = this.gateways.regionOf(addr) !== undefined;
    return this.peerPort.dial(addr, (socket) => {
      const link = new PeerLink(socket, 'dialer', this.settings, this, gateway ? { gateway: true } : {});
      link.target = addr;
      this.allLinks.add(link);
    });
  }

  linkUp(link: PeerLink): void {
    this.leftHandshake(link);
    const peer = link.peer!;
    const o = this.options;
    if (peer.id === this.self.id) {
      const region = link.target === undefined ? undefined : this.gateways.regionOf(link.target);
      if (region !== undefined) {
        this.redialer.connected(link.target!, false);
        this.refuseTopology(link, `gateway address ${link.target} of region ${region} leads to this node itself`);
        return;
      }
      // A seed list that names this node itself (one list for every node): stop dialing it.
      if (link.target) {
        this.redialer.connected(link.target, false);
        this.selfSeeds.add(link.target);
      }
      link.close('linked to itself');
      return;
    }
    const problem = topologyProblem(o.mode, link);
    if (problem !== undefined) return this.refuseTopology(link, problem);
    const leafAs = this.leaves.linkUp(link);
    if (leafAs === 'refused') return;
    const regionAs = leafAs === 'leaf' ? 'peer' : this.gateways.linkUp(link);
    if (regionAs === 'refused') return;
    if (leafAs === 'leaf' || regionAs === 'gateway') {
      // A leaf's or another region's link: interest only, never gossiped.
      this.interest.linkUp(link);
      return;
    }
    // A link to this peer is up, whichever one survives below: stop dialing it at
    // every address it is known by (its advertised one and, through a proxy or a
    // DNS seed, the one we dialed). Otherwise the redialer keeps making links
    // that are then closed as duplicates, forever.
    this.redialer.connected(peer.cluster);
    if (link.target) {
      this.redialer.connected(link.target);
      this.dialedPeer.linked(link.target, peer.id);
    }
    const existing = this.byPeer.get(peer.id);
    if (existing) {
      // A replaced link's late events are ignored from now on (order, below), so old and new never interleave.
      if (!keepsNewLink(this.self.id, link, existing, o.pingInterval)) {
        link.close('duplicate link');
        return;
      }
    }
    // Point at the new link before closing the old one, so linkDown sees the old one as stale and does not redial.
    this.byPeer.set(peer.id, link);
    existing?.close('replaced by a newer link');
    this.gossip.linked(peer, link.target);
    this.dialedPeer.prune(this.known);
    // Two nodes of one name (NATS warns too): logs, traces and `meshbus cluster` would tell them apart by id only.
    const namesake = peer.name === '' ? undefined : peer.name === this.self.name ? this.self.id : [...this.byPeer.values()].find((l) => l !== link && l.peer?.name === peer.name)?.peer?.id;
    if (namesake !== undefined && this.refusalsTold.due(`name ${peer.name}`)) this.node.logger.warn({ peer: peer.id, peerName: peer.name, namesake }, 'two nodes of the mesh have one name: give each its own --name');
    this.node.logger.info({ peer: peer.id, peerName: peer.name, address: peer.cluster, role: link.role, ...(o.mode === 'leaf' ? { hub: true } : {}), ...(link.peerMaxPayload !== this.node.options.maxPayload ? { peerMaxPayload: link.peerMaxPayload } : {}) }, 'peer link up');
    // Snapshot of our interest, then what we know of the mesh (a leaf gossips nothing: it is not part of one).
    this.interest.linkUp(link);
    if (o.mode !== 'leaf') this.gossip.send();
  }

  /**
   * A link that would make a topology meshbus does not route (a loop): an
   * ERROR both ends log, then close. Logged once per peer and reason every
   * REPORT_EVERY: the misconfigured end redials, every few seconds, forever.
   */
  private refuseTopology(link: PeerLink, why: string): void {
    if (this.refusalsTold.due(`us ${link.peer?.id ?? link.remote} ${why}`, undefined, 'us')) {
      this.node.logger.error({ peer: link.peer?.id, peerName: link.peer?.name, remote: link.remote, code: 'MB_ERR_TOPOLOGY' }, `peer link refused: ${why}`);
    }
    link.fail('MB_ERR_TOPOLOGY', why);
  }

  refusedByPeer(link: PeerLink, message: string): void {
    if (!this.refusalsTold.due(`peer ${link.peer?.id ?? link.remote} ${message}`, undefined, 'peer')) return;
    this.node.logger.error({ peer: link.peer?.id, peerName: link.peer?.name, address: link.target, code: 'MB_ERR_TOPOLOGY', message }, 'peer refused this link: topology');
  }

  /** Every link known in the mesh: this node's own and those its peers reported. */
  links(): LinkView[] {
    return this.gossip.links();
  }

  linkDown(link: PeerLink, reason: string): void {
    this.leftHandshake(link);
    this.allLinks.delete(link);
    this.retired.interestBytesOut += link.interestBytesOut;
    this.retired.gossipBytesOut += link.gossipBytesOut;
    const peerId = link.peer?.id;
    if (link.kind === 'gateway') {
      this.gateways.linkDown(link, reason);
      this.interest.linkDown(link);
      return;
    }
    if (link.kind === 'leaf') {
      this.leaves.leafDown(link, reason);
      this.interest.linkDown(link);
      return;
    }
    const current = peerId !== undefined && this.byPeer.get(peerId) === link;
    if (current) {
      this.byPeer.delete(peerId);
      // Nothing more arrives from that link; a node that comes back under the same
      // configured id starts its sequence again and must not be taken for old news.
      this.order.forget(peerId);
      this.gossip.peerGone(peerId);
    }
    this.interest.linkDown(link);
    if (current && this.options.mode !== 'leaf') this.gossip.send();
    if (current) {
      // warn: the default level of `meshbus dev` shows a peer going down; our own shutdown is no news.
      const rec = { peer: peerId, peerName: link.peer?.name, address: link.peer?.cluster, reason };
      if (this.stopped) this.node.logger.info(rec, 'peer link down');
      else this.node.logger.warn(rec, 'peer link down');
      if (!this.stopped) this.redialPeer(link.peer!);
    }
    // A link we dialed that never authenticated: a failure of that address (the
    // redialer tries again with backoff, and gives a gossiped address up after a
    // bounded number of failures, or at once if the secret was refused either way).
    if (!this.stopped && !link.peer && link.target) {
      const refused = link.failCode === 'MB_ERR_AUTH_FAILED';
      if (!this.redialer.wants(link.target) && this.seeds.has(link.target)) this.redialer.want(link.target, true);
      this.redialer.failed(link.target, link.failCode ? `${link.failCode}: ${reason}` : reason, refused);
    }
  }

  /** Says what the redialer tells (redialer.ts: seeds once per way of failing, then every 5 min; gossiped addresses once given up). */
  private redialNote(event: RedialEvent, address: string, d: RedialNote): void {
    if (event === 'gave-up') {
      this.gossip.addressGivenUp(address);
      this.dialedPeer.givenUp(address, this.known);
    }
    sayRedialNote(this.node.logger, event, address, d);
  }

  /**
   * The link to `peer` is gone: dial again every address we reached it at
   * (seeds, which may be proxies or DNS names) and, in a full mesh, the
   * address it advertises.
   */
  private redialPeer(peer: PeerInfo): void {
    if (this.options.mode === 'leaf') return this.leaves.hubDown();
    for (const target of this.dialedPeer.addressesOf(peer.id)) this.redialer.want(target, this.seeds.has(target));
    if (this.options.mode === 'full') this.redialer.want(peer.cluster, this.seeds.has(peer.cluster));
  }

  peerControl(link: PeerLink, f: Frame): void {
    // Only a body this node reads is decoded, within its bound (peer-bodies.ts).
    if (f.type === FrameType.INTEREST) {
      const body = peerBody(f);
      // A request for interest, not interest: answered whichever way the link goes (a gateway's dialer asks).
      if (body.resync === true) this.interest.resyncAsked(link);
      else if (!this.gateways.wrongWay(link, 'interest', body)) this.interest.received(link, body);
    } else if (f.type === FrameType.PEERS) {
      // A leaf dials its seeds only; leaves and other regions' nodes are not nodes of this mesh.
      if (this.options.mode !== 'leaf' && link.kind === 'peer') this.gossip.received(link, peerBody(f));
    } else this.node.logger.debug({ peer: link.peerId, type: f.typeName }, 'ignored frame from peer');
  }

  // ---- events from peers ----

  readonly flushRun = (): void => this.node.flushRun();

  peerEvent(link: PeerLink, f: Frame, repeat = false): void {
    // Header but for sequence and timestamp, and topic, as the event before it, still in the run (MeshNode.repeatsRun): the
    // checks below gave their answer but for the origin's order (a partial mesh's duplicates: the full path).
    if (repeat && this.options.mode !== 'partial' && this.node.repeatsRun(f, link)) return this.node.forwardedRepeat(f, this.inOrder(link, f));
    if (this.gateways.wrongWay(link, 'events')) {
      this.badPeerEvents++;
      return;
    }
    // A peer may be buggy or compromised: its events pass the node's ingress checks (a client's, but a position stamped by the
    // storing node is allowed). A leaf sends up its own events only, and no link carries some origins (origin-rules.ts): a forged
    // far-future sequence would make this node drop that origin's events as old (order, below). Re-sent queue copies (memberGone)
    // keep their origin: a keyed leaf's, only those it was sent, unchanged (sent-copies.ts), which its publish rules do not judge.
    const resent = resentCopy(link, f);
    const rules = link.rules;
    const handedBack = resent && rules?.handsBack(f, this.interest.queueFor(link, announcedId(link, f)).queue) === true;
    const foreign = !link.stampedByPeer(f) && (!resent || (rules !== undefined && !handedBack));
    if (foreign && (link.kind === 'leaf' || (this.options.mode !== 'partial' && impossibleOrigin(link, f, this.region)))) {
      this.badPeerEvents++;
      return;
    }
    if (this.limits.refusedFromPeer(link, f) || (!handedBack && rules?.refusesEvent(f) === true)) return;
    let route: Receivers;
    try {
      route = this.node.forwardedIngress(f);
    } catch (e) {
      this.badPeerEvents++;
      this.node.logger.debug({ peer: link.peer?.id, err: String((e as Error).message) }, 'malformed event from peer dropped');
      return;
    }
    const partial = this.options.mode === 'partial';
    // Every other event, queue copies that crossed two links (leaf → hub → peer, gateway → node → peer) included, keeps its origin's order.
    if (!partial && !resent && !this.inOrder(link, f)) return;
    // One hop in a full mesh: a peer's event goes to local receivers (leaves included); a leaf's, like a client's publish,
    // to everyone who wants it, peers too; another region's, to this region only, never out to a third.
    const scope: DeliveryScope = partial || link.kind === 'leaf' ? 'all' : link.kind === 'gateway' ? 'region' : 'local';
    if (f.sid === 0) {
      if (partial && !this.dedup.firstTime(f.origin, f.seq)) {
        this.duplicatesDropped++;
        return;
      }
      // None here: the subscription it was sent for ended (max reached, UNSUB) before the peer heard.
      if (this.node.deliverForwarded(f, route, link, scope) === 0) this.node.stats.noInterest++;
      return;
    }
    // A queue-group event: the sid is the id we announced to this peer for (pattern, group).
    const { known, queue } = this.interest.queueFor(link, announcedId(link, f));
    if (!known || queue === undefined) {
      this.node.stats.dropped.noQueueMember++;
      return;
    }
    // A leaf's re-sent copy goes to a member of the hub's own, else memberGone passes it on marked (to peers, other regions; a partial mesh: as before).
    const groupScope = resent && link.kind === 'leaf' && !partial ? 'local' : scope;
    if (!this.node.deliverToGroup(f, route, queue, link, groupScope)) memberGone(this.node, this.options.mode, f, route, queue, link, resent);
  }

  /** Whether `f` keeps its origin's order (OriginOrder.admit); if not, it is dropped and counted. */
  private inOrder(link: PeerLink, f: Frame): boolean {
    if (this.order.admit(link, f)) return true;
    this.reorderedDropped++;
    this.limits.eventLost('outOfOrder');
    return false;
  }

  private tick(): void {
    const now = Date.now();
    if (this.options.mode !== 'leaf' && this.gossip.due(now)) this.gossip.send();
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
