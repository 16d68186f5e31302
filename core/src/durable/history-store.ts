import { isCluster, type RedisClient } from './redis-connect.js';
import type { Position } from '@meshbus/proto';
import { randomId } from '../ids.js';
import type { ResolvedTopicRule } from './store-config.js';
import { isEpoch, readStoredFrame } from './stored-frame.js';
import { wrongType } from './connection-error.js';
import { corruptKeyReplaced, sideWriteFailed, type CorruptWatch } from './corrupt-key.js';
import { LATEST, parseLatest, type LatestValue } from './latest-read.js';

export type { LatestValue } from './latest-read.js';

/**
 * Per-topic history in Redis.
 *
 * - `<prefix>m:{<topic>}`: hash {e: epoch, o: last offset, c: Redis ms the
 *   epoch began, x: 1 when it replaced corrupt keys, l: latest}. The epoch
 *   is a random id created by the first write when the hash does not exist
 *   (first event, or history lost: Redis restarted without persistence, keys
 *   deleted) or is corrupt (another Redis type, malformed: SPEC 15.7). Reads
 *   never create it. A position from another epoch can never be recovered.
 *   `l` (topics of a `latest` rule only) is `<epoch>|<offset>|<frame>`, the
 *   topic's latest event.
 * - `<prefix>h:{<topic>}`: stream; entry id `<offset>-0`, fields f (the
 *   stamped frame as published, without position) and t (Redis time, ms).
 *   Trimmed by count (MAXLEN) and age (MINID at the first young entry).
 * - `<prefix>lt:<rule pattern>`: set of the topics of a `latest` rule that
 *   have a latest value (a script beside the append: SADD, idempotent, a key
 *   of another type replaced), which a wildcard subscription scans.
 *
 * Offset assignment, XADD, trimming and the latest value happen in one Lua
 * script, so they are atomic: offsets are gap-free and in stream order. Every
 * key the script touches has the topic as its hash tag (`{<topic>}`): one slot,
 * so the same layout works on one server, a Sentinel primary and a Redis
 * Cluster (where the topics spread over the shards).
 */

const COMMON = `
local function trimByAge(stream, age)
  if age <= 0 then return end
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 128)
  local keep = nil
  for _, e in ipairs(first) do
    local f = e[2]
    local t = nil
    for j = 1, #f, 2 do if f[j] == 't' then t = tonumber(f[j + 1]) end end
    if t == nil or t >= cutoff then keep = e[1]; break end
  end
  if keep then
    redis.call('XTRIM', stream, 'MINID', keep)
  elseif #first > 0 then
    local last = tonumber(string.match(first[#first][1], '^(%d+)'))
    redis.call('XTRIM', stream, 'MINID', string.format('%d-0', last + 1))
  end
end
local function nowMs()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
-- The topic's history as stored, read only (Redis is shared, nothing in it is trusted). Usable: the meta
-- is a hash with 16 hex digits (e) and an integer offset (o), the stream a stream or missing. Else
-- {corrupt = 1} when a key is there but wrong (another type, malformed: lost history), {corrupt = 0}
-- when there is none (never written, or lost: a Redis restart, keys deleted).
local function inspect(stream, m)
  local mt = redis.call('TYPE', m)['ok']
  local st = redis.call('TYPE', stream)['ok']
  local streamOk = st == 'none' or st == 'stream'
  if mt == 'hash' then
    local v = redis.call('HMGET', m, 'e', 'o', 'c', 'x')
    local e, o = v[1], tonumber(v[2])
    if streamOk and e and #e == 16 and string.match(e, '^[0-9a-f]+$') and o and o >= 0 and o < 9007199254740992 and math.floor(o) == o then
      return {e = e, o = o, c = tonumber(v[3]), x = v[4] == '1'}
    end
    return {corrupt = 1}
  end
  if mt ~= 'none' or not streamOk then return {corrupt = 1} end
  return {corrupt = 0}
end
`;

/**
 * KEYS: stream, meta. ARGV: frame, size, maxAgeMs, fresh epoch, latest (1/0).
 * → {epoch, offset, corrupt (1: a key was replaced)}
 *
 * History lost or corrupt (inspect): both keys go, a fresh epoch begins (`c`:
 * its Redis time, `x`: it replaced corrupt keys, told to resuming readers).
 * The offset is written only once the stream took the entry: a failed XADD
 * leaves no hole. A stream that holds entries past the offset (written by
 * someone else) is corrupt too. Any other failure (out of memory) is returned
 * as it is, with nothing written but the removal of lost or corrupt keys.
 */
const APPEND = `${COMMON}
local h = inspect(KEYS[1], KEYS[2])
local epoch, off, corrupt = h.e, (h.o or 0) + 1, h.corrupt or 0
local fresh = epoch == nil
local function reset()
  redis.call('DEL', KEYS[1], KEYS[2])
  epoch, off, fresh = ARGV[4], 1, true
end
if fresh then reset() end
local size = tonumber(ARGV[2])
local age = tonumber(ARGV[3])
local ms = nowMs()
if size > 0 then
  local function add()
    return redis.pcall('XADD', KEYS[1], 'MAXLEN', size, string.format('%d-0', off), 'f', ARGV[1], 't', string.format('%d', ms))
  end
  local r = add()
  if type(r) == 'table' and r.err and not fresh and string.find(r.err, 'smaller than the target stream top item', 1, true) then
    corrupt = 1
    reset()
    r = add()
  end
  if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
  if age > 0 then
    trimByAge(KEYS[1], age)
    redis.call('PEXPIRE', KEYS[1], age)
  end
end
if fresh then
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', off, 'c', string.format('%d', ms))
  if corrupt == 1 then redis.call('HSET', KEYS[2], 'x', '1') end
else
  redis.call('HSET', KEYS[2], 'o', off)
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[2], 'l', epoch .. '|' .. string.format('%d', off) .. '|' .. ARGV[1])
elseif age > 0 then
  -- History that ages out, no latest value: the topic holds nothing once its last event is older than
  -- the age, and its place in the rule's topic set is given back then (topic-reclaim.ts).
  redis.call('PEXPIRE', KEYS[2], age)
end
return {epoch, off, corrupt}
`;

/**
 * KEYS: stream, meta. ARGV: since epoch ('' = from now), since offset, maxAgeMs, (unused),
 * upper offset (0 = to the end), max entries in all, max entries in this page, max bytes in this page.
 * → {epoch, top, recovered (1/0), entries, corrupt meta (1/0)}, or
 * {'', 0, 0, {}, corrupt, Redis ms} when the topic has no history.
 *
 * Writes no key (it may trim an existing stream by age): a topic without
 * history answers "nothing yet" and read() hands out the epoch its first
 * write will take (newEpoch: its first 11 hex digits are a time). A reader
 * at offset 0 of another epoch saw nothing of the topic at that time: it
 * gets the whole of a current epoch created at or after it (`c`) unless
 * that epoch replaced corrupt keys (they may have been its history), else
 * recovered = 0. `corrupt`: the keys are corrupt now, or were replaced as
 * corrupt (`x`) and the reader resumes from another epoch: its history was
 * lost that way.
 *
 * One page at most: XRANGE in small steps until the page's entry or byte
 * budget is reached (at least one entry), so a replay never makes Redis
 * build a reply of the whole history. An entry larger than ARGV[9] (the
 * largest event a node stores) comes back as `x` = its size, never its
 * bytes: written by someone else into the store, a 100 MB entry was read
 * whole into the node before it was found corrupt.
 */
const READ = `${COMMON}
local h = inspect(KEYS[1], KEYS[2])
local since = tonumber(ARGV[2])
if h.e == nil then return {'', 0, 0, {}, h.corrupt, nowMs()} end
local epoch, top = h.e, h.o
if ARGV[1] == '' then return {epoch, top, 1, {}, 0} end
if ARGV[1] ~= epoch then
  local t = nil
  if since == 0 and #ARGV[1] == 16 and string.match(ARGV[1], '^[0-9a-f]+$') then t = tonumber(string.sub(ARGV[1], 1, 11), 16) end
  if not (t and h.c and h.c >= t and not h.x) then return {epoch, top, 0, {}, h.x and 1 or 0} end
end
local upto = tonumber(ARGV[5])
if upto == 0 or upto > top then upto = top end
if since > top then return {epoch, top, 0, {}, 0} end
if since >= upto then return {epoch, top, 1, {}, 0} end
if upto - since > tonumber(ARGV[6]) then return {epoch, top, 0, {}, 0} end
trimByAge(KEYS[1], tonumber(ARGV[3]))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {epoch, top, 0, {}, 0} end
local firstOff = tonumber(string.match(first[1][1], '^(%d+)'))
if firstOff == nil or firstOff > since + 1 then return {epoch, top, 0, {}, 0} end
local maxEntries = tonumber(ARGV[7])
local maxBytes = tonumber(ARGV[8])
local maxEntry = tonumber(ARGV[9])
local entries = {}
local bytes = 0
local from = since + 1
while #entries < maxEntries and bytes < maxBytes and from <= upto do
  local step = math.min(16, maxEntries - #entries)
  local got = redis.call('XRANGE', KEYS[1], string.format('%d-0', from), string.format('%d-0', upto), 'COUNT', step)
  if #got == 0 then break end
  for _, e in ipairs(got) do
    if #entries >= maxEntries or (bytes >= maxBytes and #entries > 0) then break end
    local size = 0
    for j = 2, #e[2], 2 do size = size + #e[2][j] end
    if size > maxEntry then
      e = {e[1], {'x', tostring(size)}}
      size = 0
    end
    bytes = bytes + size
    entries[#entries + 1] = e
    local off = tonumber(string.match(e[1], '^(%d+)'))
    if off == nil then return redis.error_reply('MBCORRUPT stream id ' .. e[1]) end
    from = off + 1
  end
end
return {epoch, top, 1, entries, 0}
`;

/**
 * KEYS: the latest index of a rule. ARGV: topic. → 1 when the key held
 * another type (replaced: the index restarts, each topic is added back at
 * its next event), else 0.
 */
const INDEX = `
local t = redis.call('TYPE', KEYS[1])['ok']
local corrupt = 0
if t ~= 'set' and t ~= 'none' then
  redis.call('DEL', KEYS[1])
  corrupt = 1
end
redis.call('SADD', KEYS[1], ARGV[1])
return corrupt
`;

/** One event read back from history. */
export interface StoredEvent {
  offset: number;
  /** The frame as published (stamped, no position), checked by readStoredFrame; empty when `corrupt`. */
  frame: Uint8Array;
  /** Set when the entry cannot be decoded (what is wrong): it is skipped, its subscriber told. */
  corrupt?: string;
}

export interface ReadResult {
  epoch: string;
  /** Offset of the newest event of the topic (0: none yet). */
  top: number;
  /** false: the history does not cover the requested position (other epoch, trimmed, too long). */
  recovered: boolean;
  /** One page, in offset order: at most `pageEvents` events and about `pageBytes` bytes. */
  events: StoredEvent[];
  /** The stream's meta hash was malformed: it was reset (new epoch, history lost). */
  metaCorrupt: boolean;
}


/** Most events one replay may cover; a client further behind gets recovered=false. */
export const MAX_REPLAY = 100_000;

/** Page bounds of one history read. */
export interface PageLimits {
  pageEvents: number;
  pageBytes: number;
  /** Largest stored entry or latest value read back (the largest event stored, and its frame and position); a larger one is corrupt, never read. */
  maxEntryBytes?: number;
}

/** What a stored event holds beyond its payload, at most: header, topic, extension block, the latest value's position. */
export const STORED_OVERHEAD = 128 * 1024;

const DEFAULT_PAGE: PageLimits = { pageEvents: 256, pageBytes: 1024 * 1024 };

type ScriptReply = [Buffer, number | Buffer, number?, Array<[Buffer, Buffer[]]>?, number?, number?];
type AppendReply = [Buffer, number, number];

interface StoreCommands {
  mbAppendBuffer(k1: string, k2: string, frame: Buffer, size: number, age: number, fresh: string, latest: string): Promise<AppendReply>;
  mbIndexLatest(index: string, topic: string): Promise<number>;
  mbLatestBuffer(meta: string, max: number): Promise<Buffer | number | null>;
  mbReadBuffer(
    k1: string,
    k2: string,
    epoch: string,
    since: number,
    age: number,
    fresh: string,
    upto: number,
    max: number,
    pageEvents: number,
    pageBytes: number,
    maxEntry: number,
  ): Promise<ScriptReply>;
}

export class HistoryStore {
  private readonly r: RedisClient & StoreCommands;

  /**
   * The epoch a topic without history will take at its first write from
   * this node, handed out to its readers meanwhile (SPEC 15.8: reading
   * writes nothing): a reader on this node then goes on into that epoch
   * without a break. Bounded: cleared when full (a reader then sees the
   * epoch change at the first event, recovered = false, as for any epoch
   * another node made; resuming later still recovers: see READ).
   */
  private readonly pending = new Map<string, string>();

  /** On a Redis Cluster, a topic starting with `}` is tagged apart (see tag()); elsewhere its keys stay as they always were. */
  private readonly clustered: boolean;
  /** PageLimits.maxEntryBytes. */
  private readonly maxEntry: number;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly page: PageLimits = DEFAULT_PAGE,
    /** Where keys found corrupt and replaced are counted and logged (the node). */
    private readonly watch?: CorruptWatch,
  ) {
    this.clustered = isCluster(redis);
    this.maxEntry = page.maxEntryBytes ?? 64 * 1024 * 1024 + STORED_OVERHEAD;
    redis.defineCommand('mbAppend', { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand('mbRead', { numberOfKeys: 2, lua: READ });
    redis.defineCommand('mbIndexLatest', { numberOfKeys: 1, lua: INDEX });
    redis.defineCommand('mbLatest', { numberOfKeys: 1, lua: LATEST });
    this.r = redis as RedisClient & StoreCommands;
  }

  streamKey(topic: string): string {
    return `${this.prefix}h:{${this.tag(topic)}}`;
  }
  metaKey(topic: string): string {
    return `${this.prefix}m:{${this.tag(topic)}}`;
  }

  /**
   * The hash tag of a topic's keys: the topic. Redis Cluster hashes the text
   * between the first `{` and the next `}`, and the whole key when that is
   * empty: a topic starting with `}` put its stream and meta keys in two
   * slots, and every durable publish to it failed with CROSSSLOT (reported as
   * MB_ERR_STORE_UNAVAILABLE, for ever). Such a topic is tagged after a space,
   * which no topic holds (so no two topics share keys).
   */
  private tag(topic: string): string {
    return this.clustered && topic.charCodeAt(0) === 0x7d ? ` ${topic}` : topic;
  }
  /** The set of the topics of a `latest` rule that have a latest value. */
  latestIndexKey(rule: ResolvedTopicRule): string {
    return `${this.prefix}lt:${rule.pattern}`;
  }

  /**
   * Stores one event; resolves with its position once Redis has executed the
   * write, rejects when it did not (nothing stored, no offset taken). Keys
   * found corrupt are replaced (a fresh epoch), counted and logged.
   */
  async append(topic: string, rule: ResolvedTopicRule, frame: Uint8Array): Promise<Position> {
    const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const meta = this.metaKey(topic);
    const fresh = this.pending.get(topic) ?? newEpoch(Date.now());
    const appended = this.r.mbAppendBuffer(this.streamKey(topic), meta, buf, rule.size, rule.maxAgeMs, fresh, rule.latest ? '1' : '0');
    // The index lives in another slot (not in the script). Sent with it, awaited with it: a
    // reader may see a topic without a value yet (skipped), and the value is live-delivered anyway.
    // Its failure does not fail the publish: the event is stored (a NACK would say it is not).
    const index = this.latestIndexKey(rule);
    const indexed = rule.latest ? this.r.mbIndexLatest(index, topic).then((c) => Number(c) === 1, (e: unknown) => e as Error) : undefined;
    const [[epoch, off, corrupt], idx] = await Promise.all([appended, indexed]);
    this.pending.delete(topic);
    if (Number(corrupt) === 1) corruptKeyReplaced(this.watch, meta, 'topic history');
    if (idx === true) corruptKeyReplaced(this.watch, index, 'latest index of a rule');
    else if (idx instanceof Error) sideWriteFailed(this.watch, index, 'latest index of a rule', String(idx.message));
    return { epoch: epoch.toString(), offset: Number(off) };
  }

  /**
   * One page of the events of `topic` after `since` (up to offset `upto`, 0 =
   * all), atomically with the current epoch and top offset. `since.epoch ===
   * ''` reads nothing and just reports the current position. Writes no key:
   * a topic without history answers top 0 in the epoch its first write here
   * will take (nothingYet). Entries that
   * cannot be decoded come back marked `corrupt` (never thrown). Rejects when
   * Redis fails.
   */
  async read(topic: string, rule: ResolvedTopicRule, since: Position, upto = 0): Promise<ReadResult> {
    const reply = await this.r.mbReadBuffer(
      this.streamKey(topic),
      this.metaKey(topic),
      since.epoch,
      since.offset,
      rule.maxAgeMs,
      '',
      upto,
      MAX_REPLAY,
      this.page.pageEvents,
      this.page.pageBytes,
      this.maxEntry,
    );
    const [epoch, top, recovered, entries, corrupt, ms] = reply;
    if (epoch.length === 0) return this.nothingYet(topic, since, Number(ms), corrupt === 1);
    const events: StoredEvent[] = [];
    for (const [id, fields] of entries ?? []) {
      const offset = parseInt(id.toString(), 10);
      if (!Number.isSafeInteger(offset)) continue;
      let frame: Buffer | undefined;
      let tooLarge: Buffer | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i]!.toString();
        if (name === 'f') frame = fields[i + 1];
        else if (name === 'x') tooLarge = fields[i + 1];
      }
      if (tooLarge) {
        events.push({ offset, frame: EMPTY, corrupt: `entry of ${tooLarge.toString()} bytes, past the largest event stored (${this.maxEntry}): not read` });
        continue;
      }
      if (!frame) {
        events.push({ offset, frame: EMPTY, corrupt: 'entry has no frame field' });
        continue;
      }
      try {
        readStoredFrame(frame, topic);
        events.push({ offset, frame });
      } catch (e) {
        events.push({ offset, frame: EMPTY, corrupt: (e as Error).message });
      }
    }
    return { epoch: epoch.toString(), top: Number(top), recovered: recovered === 1, events, metaCorrupt: corrupt === 1 };
  }

  /**
   * A topic without history: the epoch its first write here will take, top 0.
   * Recovered for a reader from now, in that epoch, or at offset 0 of an epoch
   * handed out before (it saw nothing, there is still nothing); else not.
   */
  private nothingYet(topic: string, since: Position, ms: number, metaCorrupt: boolean): ReadResult {
    let epoch = this.pending.get(topic);
    if (epoch === undefined) {
      if (this.pending.size >= MAX_PENDING_EPOCHS) this.pending.clear();
      this.pending.set(topic, (epoch = newEpoch(ms)));
    }
    const before = since.offset === 0 && isEpoch(since.epoch) && parseInt(since.epoch.slice(0, 11), 16) <= ms;
    const recovered = since.epoch === '' || since.epoch === epoch || before;
    return { epoch, top: 0, recovered, events: [], metaCorrupt };
  }

  /** The latest event stored for one topic (one HGET), or undefined when there is none. */
  async latestOf(_rule: ResolvedTopicRule, topic: string): Promise<LatestValue | undefined> {
    const v = await this.latestField(topic);
    return v === null ? undefined : typeof v === 'string' ? { topic, corrupt: v } : parseLatest(topic, v);
  }

  /** The `l` field of a topic's meta hash; a string when that key is not a hash (corrupt: skipped, its subscriber told). */
  private latestField(topic: string): Promise<Buffer | null | string> {
    return this.r.mbLatestBuffer(this.metaKey(topic), this.maxEntry).then(
      (v) => (typeof v === 'number' ? `latest value of ${v} bytes, past the largest event stored (${this.maxEntry}): not read` : v),
      (e: unknown) => {
        if (wrongType(e)) return 'stream metadata is not a hash (wrong type)';
        throw e;
      },
    );
  }

  /**
   * One page of the latest events of `rule` (SSCAN of its topic set from
   * `cursor`, about `count` topics, then one HGET per topic): never the whole
   * set in one reply. Resolves with the next cursor ('0' when done) and the
   * values; topics without a value are left out, unreadable ones come back
   * with `corrupt` set.
   */
  async latestPage(rule: ResolvedTopicRule, cursor: string, count: number): Promise<{ cursor: string; values: LatestValue[] }> {
    let next: string;
    let topics: string[];
    try {
      [next, topics] = await this.r.sscan(this.latestIndexKey(rule), cursor, 'COUNT', count);
    } catch (e) {
      // The index is not a set: no value can be found (the rule's next event replaces it).
      if (!wrongType(e)) throw e;
      return { cursor: '0', values: [] };
    }
    const raw = await Promise.all(topics.map((t) => this.latestField(t)));
    const values: LatestValue[] = [];
    raw.forEach((v, i) => {
      if (typeof v === 'string') values.push({ topic: topics[i]!, corrupt: v });
      else if (v !== null) values.push(parseLatest(topics[i]!, v));
    });
    return { cursor: next, values };
  }
}

const EMPTY = new Uint8Array(0);

/** Topics without history whose coming epoch a node remembers (HistoryStore.pending). */
const MAX_PENDING_EPOCHS = 16_384;

/**
 * A fresh epoch: 16 hex digits (isEpoch), the first 11 the time `ms` (Redis
 * time when read from a read's answer), the last 5 random. READ compares
 * that time with when the current epoch began.
 */
export function newEpoch(ms: number): string {
  const t = Math.max(0, Math.min(Math.floor(ms), 0xfffffffffff));
  return t.toString(16).padStart(11, '0') + randomId().slice(0, 5);
}
