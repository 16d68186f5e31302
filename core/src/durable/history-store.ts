import { isCluster, type RedisClient } from './redis-connect.js';
import type { Position } from '@meshbus/proto';
import { randomId } from '../ids.js';
import type { ResolvedTopicRule } from './store-config.js';
import { isEpoch, readStoredFrame } from './stored-frame.js';

/**
 * Per-topic history in Redis.
 *
 * - `<prefix>m:{<topic>}`: hash {e: epoch, o: last offset, l: latest}. The
 *   epoch is a random id created when the hash does not exist (first event,
 *   or history lost: Redis restarted without persistence, keys deleted). A
 *   position from another epoch can never be recovered. `l` (topics of a
 *   `latest` rule only) is `<epoch>|<offset>|<frame>`, the topic's latest event.
 * - `<prefix>h:{<topic>}`: stream; entry id `<offset>-0`, fields f (the
 *   stamped frame as published, without position) and t (Redis time, ms).
 *   Trimmed by count (MAXLEN) and age (MINID at the first young entry).
 * - `<prefix>lt:<rule pattern>`: set of the topics of a `latest` rule that
 *   have a latest value (SADD, idempotent, beside the script), which a
 *   wildcard subscription scans.
 *
 * Offset assignment, XADD, trimming and the latest value happen in one Lua
 * script, so they are atomic: offsets are gap-free and in stream order. Every
 * key the script touches has the topic as its hash tag (`{<topic>}`): one slot,
 * so the same layout works on one server, a Sentinel primary and a Redis
 * Cluster (where the topics spread over the shards).
 */

const TRIM_BY_AGE = `
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
-- The stream's epoch. A missing or malformed meta hash (anything but 16 hex digits and
-- an integer offset: Redis is shared, nothing in it is trusted) means the history is lost:
-- a fresh epoch, an empty stream. Second result: 1 when the hash was malformed.
local function meta(stream, m, fresh)
  local epoch = redis.call('HGET', m, 'e')
  local o = tonumber(redis.call('HGET', m, 'o'))
  local ok = epoch and #epoch == 16 and string.match(epoch, '^[0-9a-f]+$') and o and o >= 0 and math.floor(o) == o
  if not ok then
    local corrupt = 0
    if redis.call('EXISTS', m) == 1 then corrupt = 1 end
    epoch = fresh
    redis.call('DEL', stream, m)
    redis.call('HSET', m, 'e', epoch, 'o', 0)
    return epoch, corrupt
  end
  return epoch, 0
end
`;

/** KEYS: stream, meta. ARGV: frame, size, maxAgeMs, fresh epoch, latest (1/0). → {epoch, offset} */
const APPEND = `${TRIM_BY_AGE}
local epoch = meta(KEYS[1], KEYS[2], ARGV[4])
local off = redis.call('HINCRBY', KEYS[2], 'o', 1)
local size = tonumber(ARGV[2])
local age = tonumber(ARGV[3])
if size > 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('XADD', KEYS[1], 'MAXLEN', size, string.format('%d-0', off), 'f', ARGV[1], 't', string.format('%d', ms))
  if age > 0 then
    trimByAge(KEYS[1], age)
    redis.call('PEXPIRE', KEYS[1], age)
  end
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[2], 'l', epoch .. '|' .. string.format('%d', off) .. '|' .. ARGV[1])
end
return {epoch, off}
`;

/**
 * KEYS: stream, meta. ARGV: since epoch ('' = from now), since offset, maxAgeMs, fresh epoch,
 * upper offset (0 = to the end), max entries in all, max entries in this page, max bytes in this page.
 * → {epoch, top, recovered (1/0), entries, corrupt meta (1/0)}
 *
 * One page at most: XRANGE in small steps until the page's entry or byte
 * budget is reached (at least one entry), so a replay never makes Redis
 * build a reply of the whole history.
 */
const READ = `${TRIM_BY_AGE}
local epoch, corrupt = meta(KEYS[1], KEYS[2], ARGV[4])
local top = tonumber(redis.call('HGET', KEYS[2], 'o'))
if ARGV[1] == '' then return {epoch, top, 1, {}, corrupt} end
if ARGV[1] ~= epoch then return {epoch, top, 0, {}, corrupt} end
local since = tonumber(ARGV[2])
local upto = tonumber(ARGV[5])
if upto == 0 or upto > top then upto = top end
if since > top then return {epoch, top, 0, {}, corrupt} end
if since >= upto then return {epoch, top, 1, {}, corrupt} end
if upto - since > tonumber(ARGV[6]) then return {epoch, top, 0, {}, corrupt} end
trimByAge(KEYS[1], tonumber(ARGV[3]))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {epoch, top, 0, {}, corrupt} end
local firstOff = tonumber(string.match(first[1][1], '^(%d+)'))
if firstOff == nil or firstOff > since + 1 then return {epoch, top, 0, {}, corrupt} end
local maxEntries = tonumber(ARGV[7])
local maxBytes = tonumber(ARGV[8])
local entries = {}
local bytes = 0
local from = since + 1
while #entries < maxEntries and bytes < maxBytes and from <= upto do
  local step = math.min(16, maxEntries - #entries)
  local got = redis.call('XRANGE', KEYS[1], string.format('%d-0', from), string.format('%d-0', upto), 'COUNT', step)
  if #got == 0 then break end
  for _, e in ipairs(got) do
    if #entries >= maxEntries or (bytes >= maxBytes and #entries > 0) then break end
    for j = 2, #e[2], 2 do bytes = bytes + #e[2][j] end
    entries[#entries + 1] = e
    local off = tonumber(string.match(e[1], '^(%d+)'))
    if off == nil then return redis.error_reply('MBCORRUPT stream id ' .. e[1]) end
    from = off + 1
  end
end
return {epoch, top, 1, entries, corrupt}
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

/** The latest value of one topic of a `latest` rule; `corrupt` says why an unreadable one was skipped. */
export type LatestValue = { topic: string; position: Position; frame: Uint8Array } | { topic: string; corrupt: string };

/** Most events one replay may cover; a client further behind gets recovered=false. */
export const MAX_REPLAY = 100_000;

/** Page bounds of one history read. */
export interface PageLimits {
  pageEvents: number;
  pageBytes: number;
}

const DEFAULT_PAGE: PageLimits = { pageEvents: 256, pageBytes: 1024 * 1024 };

type ScriptReply = [Buffer, number | Buffer, number?, Array<[Buffer, Buffer[]]>?, number?];

interface StoreCommands {
  mbAppendBuffer(k1: string, k2: string, frame: Buffer, size: number, age: number, fresh: string, latest: string): Promise<ScriptReply>;
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
  ): Promise<ScriptReply>;
}

export class HistoryStore {
  private readonly r: RedisClient & StoreCommands;

  /** On a Redis Cluster, a topic starting with `}` is tagged apart (see tag()); elsewhere its keys stay as they always were. */
  private readonly clustered: boolean;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly page: PageLimits = DEFAULT_PAGE,
  ) {
    this.clustered = isCluster(redis);
    redis.defineCommand('mbAppend', { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand('mbRead', { numberOfKeys: 2, lua: READ });
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

  /** Stores one event; resolves with its position once Redis has executed the write. */
  async append(topic: string, rule: ResolvedTopicRule, frame: Uint8Array): Promise<Position> {
    const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const appended = this.r.mbAppendBuffer(this.streamKey(topic), this.metaKey(topic), buf, rule.size, rule.maxAgeMs, randomId(), rule.latest ? '1' : '0');
    // The index lives in another slot (not in the script). Sent with it, awaited with it: a
    // reader may see a topic without a value yet (skipped), and the value is live-delivered anyway.
    const indexed = rule.latest ? this.r.sadd(this.latestIndexKey(rule), topic) : undefined;
    const [[epoch, off]] = await Promise.all([appended, indexed]);
    return { epoch: epoch.toString(), offset: Number(off) };
  }

  /**
   * One page of the events of `topic` after `since` (up to offset `upto`, 0 =
   * all), atomically with the current epoch and top offset. `since.epoch ===
   * ''` reads nothing and just reports the current position. Entries that
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
      randomId(),
      upto,
      MAX_REPLAY,
      this.page.pageEvents,
      this.page.pageBytes,
    );
    const [epoch, top, recovered, entries, corrupt] = reply;
    const events: StoredEvent[] = [];
    for (const [id, fields] of entries ?? []) {
      const offset = parseInt(id.toString(), 10);
      if (!Number.isSafeInteger(offset)) continue;
      let frame: Buffer | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === 'f') frame = fields[i + 1];
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

  /** The latest event stored for one topic (one HGET), or undefined when there is none. */
  async latestOf(_rule: ResolvedTopicRule, topic: string): Promise<LatestValue | undefined> {
    const v = await this.r.hgetBuffer(this.metaKey(topic), 'l');
    return v === null ? undefined : parseLatest(topic, v);
  }

  /**
   * One page of the latest events of `rule` (SSCAN of its topic set from
   * `cursor`, about `count` topics, then one HGET per topic): never the whole
   * set in one reply. Resolves with the next cursor ('0' when done) and the
   * values; topics without a value are left out, unreadable ones come back
   * with `corrupt` set.
   */
  async latestPage(rule: ResolvedTopicRule, cursor: string, count: number): Promise<{ cursor: string; values: LatestValue[] }> {
    const [next, topics] = await this.r.sscan(this.latestIndexKey(rule), cursor, 'COUNT', count);
    const raw = await Promise.all(topics.map((t) => this.r.hgetBuffer(this.metaKey(t), 'l')));
    const values: LatestValue[] = [];
    raw.forEach((v, i) => {
      if (v !== null) values.push(parseLatest(topics[i]!, v));
    });
    return { cursor: next, values };
  }
}

/** A latest-hash value `<epoch>|<offset>|<frame>` read back from Redis (untrusted). */
function parseLatest(topic: string, v: Buffer): LatestValue {
  const a = v.indexOf(0x7c);
  const b = a < 0 ? -1 : v.indexOf(0x7c, a + 1);
  if (b < 0) return { topic, corrupt: 'not <epoch>|<offset>|<frame>' };
  const epoch = v.subarray(0, a).toString();
  const offset = Number(v.subarray(a + 1, b).toString());
  if (!isEpoch(epoch) || !Number.isSafeInteger(offset) || offset <= 0) return { topic, corrupt: 'malformed position' };
  const frame = v.subarray(b + 1);
  try {
    readStoredFrame(frame, topic);
  } catch (e) {
    return { topic, corrupt: (e as Error).message };
  }
  return { topic, position: { epoch, offset }, frame };
}

const EMPTY = new Uint8Array(0);
