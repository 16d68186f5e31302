import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { lookup } from 'node:dns/promises';
import {
  ERROR_CODES,
  FrameType,
  checkIngressExtension,
  ProtocolError,
  decodeBody,
  topicHash,
  topicProblem,
  type Frame,
} from '@meshbus/proto';
import { ConfigError, serverTlsOptions, type ClusterView, type LinkView, type MeshNode, type Subscription } from '@meshbus/core';
import { DedupWindow } from './dedup-window.js';
import { InterestLedger, keyOf, parseKey } from './interest-ledger.js';
import { resolveClusterOptions, parseAddress, type ClusterOptions, type ResolvedClusterOptions } from './options.js';
import { PeerLink, type LinkHandler, type LinkSettings } from './peer-link.js';
import { PeerInfoError, clusterAddressProblem, isNodeId, nameProblem, parsePeerInfo, type PeerInfo } from './peer-info.js';
import { PreAuthGate, connectionKey } from './pre-auth-gate.js';
import { Redialer } from './redialer.js';

/** Longest queue group name, as for a client's SUB `q` (SPEC 10.10). */
const MAX_QUEUE_NAME = 256;

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** Nodes repeat their gossip this often, ms, so topology views stay fresh. */
const GOSSIP_EVERY = 5_000;
/** Refused pre-auth connections are logged at most this often, ms (with the count since the last line). */
const REFUSAL_LOG_EVERY = 10_000;

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

/** Per link: what we announced to it (our ids) and what it announced to us (its ids → subscriptions). */
interface LinkInterest {
  announced: Map<string, number>;
  announcedById: Map<number, string>;
  nextId: number;
  learned: Map<number, Subscription>;
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
  private readonly server: Server;
  private readonly allLinks = new Set<PeerLink>();
  /** Up links by peer node id (at most one per peer). */
  private readonly byPeer = new Map<string, PeerLink>();
  private readonly interest = new Map<PeerLink, LinkInterest>();
  private readonly ledger: InterestLedger;
  /** Every node heard of, by id: dial targets in a full mesh and failover URLs for clients. */
  private readonly known = new Map<string, PeerInfo>();
  private readonly redialer: Redialer;
  private readonly dedup = new DedupWindow();
  private readonly settings: LinkSettings;
  private timer: ReturnType<typeof setInterval> | undefined;
  private boundPort = 0;
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
  private unsubscribeInterest: (() => void) | undefined;
  /** Links of other nodes, as they gossiped them: node id → (peer ids, when heard). */
  private readonly remoteLinks = new Map<string, { peers: string[]; at: number }>();
  private lastGossip = 0;
  /** Connections that have not authenticated yet (bounded in total and per IP). */
  private readonly preAuth: PreAuthGate;
  /** Gate key of each accepted link still in its handshake. */
  private readonly gateKey = new WeakMap<PeerLink, string>();
  private refusalsLogged = 0;
  private lastRefusalLog = 0;
  private knownFullWarned = false;
  /** TLS handshakes on the cluster port that failed (or timed out), since start; logged at most every REFUSAL_LOG_EVERY. */
  private tlsFailures = 0;
  private lastTlsFailureLog = 0;

  constructor(
    readonly node: MeshNode,
    options: ClusterOptions = {},
  ) {
    this.options = resolveClusterOptions(options);
    // Peers refuse a node whose name breaks the rule they check (peer-info.ts): say so now.
    const np = nameProblem(node.options.name);
    if (np) throw new ConfigError(`node name cannot be used in a cluster: ${np}`);
    this.preAuth = new PreAuthGate(this.options.maxPreAuth, this.options.maxPreAuthPerIp);
    this.ledger = new InterestLedger(this.options.mode === 'partial');
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
    const tls = this.options.tls;
    if (tls) {
      // The TLS handshake is part of the peer handshake: same timeout, and the slot is taken on TCP accept (below).
      this.server = createTlsServer({ ...serverTlsOptions(tls), noDelay: true, handshakeTimeout: this.options.handshakeTimeout }, (s) => this.accepted(s));
      this.server.on('tlsClientError', (e, socket) => {
        // Not destroyed by Node itself (a handshake timeout would leave the socket open).
        socket.destroy();
        this.tlsFailures++;
        const now = Date.now();
        if (now - this.lastTlsFailureLog < REFUSAL_LOG_EVERY) return;
        this.lastTlsFailureLog = now;
        node.logger.warn({ err: e.message, failures: this.tlsFailures }, 'peer TLS handshake failed');
      });
      // Runs before the TLS server wraps the socket, so a refused one costs no TLS state.
      this.server.prependListener('connection', (raw: Socket) => void this.admit(raw));
    } else {
      this.server = createServer({ noDelay: true }, (raw) => {
        if (this.admit(raw)) this.accepted(raw);
      });
    }
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
  }

  /** Peer connections accepted that have not authenticated yet. */
  get pendingHandshakes(): number {
    return this.preAuth.pending;
  }

  /** Peer connections refused because the pre-auth bounds were reached, since start. */
  get refusedConnections(): number {
    return this.preAuth.refused;
  }

  /**
   * Takes a pre-auth slot for a new TCP connection, or closes it (no ERROR
   * frame: it would cost a write per refused connection, and with TLS it
   * could not be read anyway). The slot is freed when the link is up or the
   * socket closes.
   */
  private admit(raw: Socket): boolean {
    const ip = raw.remoteAddress;
    const key = connectionKey(raw);
    if (this.stopped || ip === undefined || !this.preAuth.admit(key, ip)) {
      raw.destroy();
      if (ip !== undefined && !this.stopped) this.logRefusal(ip);
      return false;
    }
    raw.once('close', () => this.preAuth.release(key));
    return true;
  }

  private logRefusal(ip: string): void {
    const now = Date.now();
    if (now - this.lastRefusalLog < REFUSAL_LOG_EVERY) return;
    this.lastRefusalLog = now;
    const refused = this.preAuth.refused - this.refusalsLogged;
    this.refusalsLogged = this.preAuth.refused;
    this.node.logger.warn(
      { code: 'MB_ERR_TOO_MANY_CONNECTIONS', remote: ip, refused, pending: this.preAuth.pending, maxPreAuth: this.options.maxPreAuth, maxPreAuthPerIp: this.options.maxPreAuthPerIp },
      'refusing peer connections: too many have not authenticated yet',
    );
  }

  get port(): number {
    return this.boundPort;
  }

  get mode(): 'full' | 'partial' {
    return this.options.mode;
  }

  /** Listens on the cluster port, hooks into the node and dials the seeds. */
  async start(): Promise<this> {
    const o = this.options;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new ConfigError(e.code === 'EADDRINUSE' ? `cluster port ${o.port} on ${o.host} is already in use` : `cannot listen for peers: ${e.message}`)),
      );
      this.server.listen(o.port, o.host, () => resolve());
    });
    const addr = this.server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : o.port;
    this.self.cluster = o.advertise ?? `${o.host.includes(':') ? `[${o.host}]` : o.host}:${this.boundPort}`;
    // Peers check the address they are told (peer-info.ts) and would refuse this node.
    const ap = clusterAddressProblem(this.self.cluster);
    if (ap) {
      await new Promise<void>((r) => this.server.close(() => r()));
      throw new ConfigError(`advertised cluster address "${this.self.cluster}": ${ap}`);
    }
    if (o.secret === undefined) {
      this.node.logger.warn({}, 'no cluster secret configured: any node that can reach the cluster port may join (set --cluster-secret in production)');
    }
    this.node.hooks.peers = () => this.clientUrls();
    this.unsubscribeInterest = this.node.table.onInterest((c) => this.interestChanged(keyOf(c.pattern, c.queue), 'local', c.op === '+' ? 1 : -1));
    // Interest that existed before the cluster started.
    for (const k of this.node.table.localInterest()) this.ledger.change(keyOf(k.pattern, k.queue), 'local', 1);
    this.timer = setInterval(() => this.tick(), Math.max(20, o.pingInterval / 4));
    this.timer.unref();
    for (const seed of o.seeds) this.redialer.want(seed, true);
    this.node.logger.info({ clusterPort: this.boundPort, mode: o.mode, seeds: o.seeds }, 'cluster listening');
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

  private accepted(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const link = new PeerLink(socket, 'acceptor', this.settings, this);
    this.gateKey.set(link, connectionKey(socket));
    this.allLinks.add(link);
  }

  /** The link authenticated or closed: its pre-auth slot is free. */
  private leftHandshake(link: PeerLink): void {
    const key = this.gateKey.get(link);
    if (key === undefined) return;
    this.gateKey.delete(link);
    this.preAuth.release(key);
  }

  /** Dials `addr` (host:port, the host may resolve to several addresses); resolves when the attempt ended. */
  private async dial(addr: string): Promise<boolean> {
    if (this.stopped) return false;
    const { host, port } = parseAddress(addr);
    let hosts: string[];
    try {
      hosts = (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      return false;
    }
    let any = false;
    for (const h of hosts) {
      const ok = await new Promise<boolean>((resolve) => {
        const tls = this.options.tls;
        const socket = tls
          ? tlsConnect({ host: h, port, ca: tls.ca, cert: tls.cert, key: tls.key, servername: isIp(host) ? undefined : host })
          : netConnect({ host: h, port });
        // A connect (or, with TLS, a TLS handshake) that never completes is a failed attempt too.
        const timer = setTimeout(() => {
          socket.destroy();
          resolve(false);
        }, this.options.handshakeTimeout);
        socket.once(tls ? 'secureConnect' : 'connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          const link = new PeerLink(socket, 'dialer', this.settings, this);
          link.target = addr;
          this.allLinks.add(link);
          resolve(true);
        });
        socket.once('error', () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      any ||= ok;
    }
    return any;
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
    this.interest.set(link, { announced: new Map(), announcedById: new Map(), nextId: 1, learned: new Map() });
    this.node.logger.info({ peer: peer.id, peerName: peer.name, address: peer.cluster, role: link.role }, 'peer link up');
    // Snapshot of our interest, then what we know of the mesh.
    const add: Array<[number, string, string | null]> = [];
    for (const key of this.ledger.keys()) {
      if (!this.ledger.wants(key, link)) continue;
      add.push(this.announce(link, key));
    }
    link.sendControl(FrameType.INTEREST, { snap: true, add });
    this.gossip();
  }

  /** Tells every peer what this node knows: nodes (for discovery) and its own links (for topology views). */
  private gossip(): void {
    this.lastGossip = Date.now();
    const links = [...this.byPeer.keys()];
    // Only nodes we are linked to right now: a node that died (and perhaps came back
    // under a new id at the same address) must not live on in everyone's gossip.
    const live = [this.self, ...[...this.byPeer.values()].map((l) => l.peer!)];
    for (const l of this.byPeer.values()) {
      const peers = live.filter((p) => p.id !== l.peer!.id);
      l.sendControl(FrameType.PEERS, { from: this.self.id, peers, links });
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
    for (const [id, l] of this.byPeer) add(this.self.id, id, { state: 'up', rttMs: l.rttMs });
    const fresh = Date.now() - 4 * GOSSIP_EVERY;
    for (const [from, r] of this.remoteLinks) {
      if (r.at < fresh || !this.byPeer.has(from)) continue;
      for (const to of r.peers) add(from, to, { state: 'up' });
    }
    return out;
  }

  linkDown(link: PeerLink, reason: string): void {
    this.leftHandshake(link);
    this.allLinks.delete(link);
    const li = this.interest.get(link);
    this.interest.delete(link);
    const peerId = link.peer?.id;
    const current = peerId !== undefined && this.byPeer.get(peerId) === link;
    if (current) {
      this.byPeer.delete(peerId);
      // Nothing more arrives from that link; a node that comes back under the same
      // configured id starts its sequence again and must not be taken for old news.
      this.lastSeq.delete(peerId);
    }
    if (li) {
      for (const sub of li.learned.values()) this.node.table.remove(sub);
      for (const key of this.ledger.dropSource(link)) this.propagate(key);
    }
    if (current) this.gossip();
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

  // ---- interest ----

  private interestChanged(key: string, source: 'local' | PeerLink, delta: number): void {
    this.ledger.change(key, source, delta);
    this.propagate(key);
  }

  /** Tells every link whose view of `key` changed. */
  private propagate(key: string): void {
    for (const [link, li] of this.interest) {
      const wants = this.ledger.wants(key, link);
      const id = li.announced.get(key);
      if (wants && id === undefined) link.sendControl(FrameType.INTEREST, { add: [this.announce(link, key)] });
      else if (!wants && id !== undefined) {
        li.announced.delete(key);
        li.announcedById.delete(id);
        link.sendControl(FrameType.INTEREST, { del: [id] });
      }
    }
  }

  private announce(link: PeerLink, key: string): [number, string, string | null] {
    const li = this.interest.get(link)!;
    const id = li.nextId++;
    li.announced.set(key, id);
    li.announcedById.set(id, key);
    const k = parseKey(key);
    return [id, k.pattern, k.queue ?? null];
  }

  peerControl(link: PeerLink, f: Frame): void {
    const body = decodeBody(f.payload);
    switch (f.type) {
      case FrameType.INTEREST:
        this.onInterest(link, body);
        return;
      case FrameType.PEERS:
        this.onPeers(link, body);
        if (link.peer && Array.isArray(body.links)) {
          // Node ids only, at most as many as we keep nodes: these become edges in /v1/cluster.
          const ids = body.links.slice(0, this.options.maxKnownPeers).filter(isNodeId);
          this.remoteLinks.set(link.peer.id, { peers: ids, at: Date.now() });
        }
        return;
      default:
        this.node.logger.debug({ peer: link.peerId, type: f.typeName }, 'ignored frame from peer');
    }
  }

  private onInterest(link: PeerLink, body: Record<string, unknown>): void {
    const li = this.interest.get(link);
    if (!li) return;
    const transitive = this.options.mode === 'partial';
    if (body.snap === true) {
      for (const [id, sub] of li.learned) {
        this.node.table.remove(sub);
        li.learned.delete(id);
        if (transitive) this.interestChanged(keyOf(sub.pattern, sub.queue), link, -1);
      }
    }
    for (const id of Array.isArray(body.del) ? body.del : []) {
      const sub = li.learned.get(id as number);
      if (!sub) continue;
      li.learned.delete(id as number);
      this.node.table.remove(sub);
      if (transitive) this.interestChanged(keyOf(sub.pattern, sub.queue), link, -1);
    }
    let bad = 0;
    let full = 0;
    for (const entry of Array.isArray(body.add) ? body.add : []) {
      if (!Array.isArray(entry)) continue;
      const [id, pattern, queue] = entry as [unknown, unknown, unknown];
      if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id > 0xffffffff || typeof pattern !== 'string') continue;
      if (topicProblem(pattern, true, this.node.options)) continue;
      // The same bound as a client's SUB `q` (SPEC 10.10).
      if (typeof queue === 'string' && queue.length > MAX_QUEUE_NAME) {
        bad++;
        continue;
      }
      const q = typeof queue === 'string' && queue.length > 0 ? queue : undefined;
      const old = li.learned.get(id);
      if (!old && li.learned.size >= this.options.maxPeerInterest) {
        full++;
        continue;
      }
      if (old) this.node.table.remove(old);
      const sub: Subscription = { sid: id, pattern, queue: q, owner: link, slow: 'drop' };
      li.learned.set(id, sub);
      this.node.table.add(sub);
      if (transitive && !old) this.interestChanged(keyOf(pattern, q), link, 1);
    }
    // One ERROR per frame and kind, not one per entry: a flood is not answered in kind.
    if (bad > 0) {
      this.node.logger.warn({ peer: link.peerId, refused: bad }, 'peer interest with a queue name over 256 characters refused');
      link.sendControl(FrameType.ERROR, { code: ERROR_CODES.MB_ERR_BAD_BODY.num, message: `${bad} interest entries refused: queue name over ${MAX_QUEUE_NAME} characters` });
    }
    if (full > 0) {
      this.node.logger.warn({ peer: link.peerId, refused: full, maxPeerInterest: this.options.maxPeerInterest }, 'peer interest past maxPeerInterest refused');
      link.sendControl(FrameType.ERROR, {
        code: ERROR_CODES.MB_ERR_TOO_MANY_SUBSCRIPTIONS.num,
        message: `${full} interest entries refused: this link already has ${li.learned.size} (maxPeerInterest)`,
      });
    }
  }

  /**
   * Gossip from an authenticated peer. Each entry is checked (peer-info.ts):
   * a bad one is skipped, logged and answered with a non-fatal ERROR
   * MB_ERR_BAD_PEER_INFO (one per frame); the link stays. At most
   * maxKnownPeers entries are read and kept.
   */
  private onPeers(link: PeerLink, body: Record<string, unknown>): void {
    const entries = Array.isArray(body.peers) ? body.peers.slice(0, this.options.maxKnownPeers) : [];
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
      if (info.id === this.self.id) continue;
      // A live link already answers at that address under another id: the gossip is stale.
      if (this.addressTaken(info.cluster, info.id)) continue;
      if (!this.known.has(info.id)) {
        if (this.known.size >= this.options.maxKnownPeers) {
          if (!this.knownFullWarned) this.node.logger.warn({ peer: link.peerId, maxKnownPeers: this.options.maxKnownPeers }, 'gossip names more nodes than maxKnownPeers: ignoring the rest');
          this.knownFullWarned = true;
          continue;
        }
        this.known.set(info.id, info);
      }
      // A full mesh dials every node it hears of; a partial mesh only its seeds.
      if (this.options.mode === 'full' && !this.byPeer.has(info.id)) this.redialer.want(info.cluster, false);
    }
    if (bad) {
      this.node.logger.warn({ peer: link.peerId, code: bad.code, refused: badCount, err: bad.message }, 'refused gossiped peer info');
      link.sendControl(FrameType.ERROR, { code: bad.num, message: `${badCount} gossiped peer entr${badCount === 1 ? 'y' : 'ies'} refused: ${bad.message}` });
    }
  }

  private addressTaken(addr: string, id: string): boolean {
    for (const [peerId, l] of this.byPeer) if (peerId !== id && (l.peer!.cluster === addr || l.target === addr)) return true;
    return false;
  }

  // ---- events from peers ----

  private readonly decodeTopic = (f: Frame): string => {
    const topic = f.topic;
    const problem = topicProblem(topic, false, this.node.options);
    if (problem) throw new ProtocolError('MB_ERR_BAD_TOPIC', problem);
    if (topicHash(f.topicBytes) !== f.topicHash) throw new ProtocolError('MB_ERR_BAD_HASH', topic);
    return topic;
  };

  peerEvent(link: PeerLink, f: Frame): void {
    // A peer may be buggy or compromised: its events pass the same extension check as a
    // client's, except that a position (stamped by the node that stored the event) is allowed.
    try {
      checkIngressExtension(f.extBytes, f.type === FrameType.REQ, 'peer');
    } catch (e) {
      this.node.stats.protocolErrors++;
      this.badPeerEvents++;
      this.node.logger.debug({ peer: link.peer?.id, err: String((e as Error).message) }, 'malformed event from peer dropped');
      return;
    }
    const route = this.node.table.routeFrame(f, this.decodeTopic);
    const partial = this.options.mode === 'partial';
    const sid = f.sid;
    const stats = this.node.stats;
    stats.msgsIn++;
    stats.bytesIn += f.size;
    if (!partial && !this.inOrder(link, f.seq)) {
      this.reorderedDropped++;
      return;
    }
    if (sid === 0) {
      if (partial && !this.dedup.firstTime(f.origin, f.seq)) {
        this.duplicatesDropped++;
        return;
      }
      this.node.deliver(f, route, link, !partial);
      return;
    }
    // A queue-group event: the sid is the id we announced to this peer for (pattern, group).
    const key = this.interest.get(link)?.announcedById.get(sid);
    if (key === undefined) return;
    const queue = parseKey(key).queue;
    if (queue !== undefined) this.node.deliverToGroup(f, route, queue, link, !partial);
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
    if (now - this.lastGossip > GOSSIP_EVERY) this.gossip();
    for (const l of this.allLinks) l.tick(now, this.node.options.maxStall);
  }

  /** Leaves the mesh: says goodbye on every link and stops dialing. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.redialer.stop();
    this.unsubscribeInterest?.();
    if (this.timer) clearInterval(this.timer);
    for (const l of [...this.allLinks]) {
      l.sendControl(FrameType.GOODBYE, { code: 2012, reason: 'node leaving' });
      l.close('node leaving');
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
