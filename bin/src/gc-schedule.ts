import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { flagName, nodeFlags } from './node-flags.js';

/**
 * V8's major-GC schedule for a node's process, set by `meshbus start` for its
 * own process as it sets the C allocator (tuneAllocator): a process-wide
 * setting, so the libraries never apply it by themselves.
 *
 * Why: a node forwarding large events keeps views of its socket reads (fresh
 * 64 KiB buffers, V8 external memory) in its outbound queues, and on a small
 * heap V8 then starts incremental marking over and over: 45-84 mark-compacts
 * in a 5 s run of 4 KiB events across two nodes, 20-30 % of the node's CPU on
 * marking threads, half the rate (bench/README "Major GCs on a small heap").
 * `node --initial-old-space-size=64` removes them, but NODE_OPTIONS refuses
 * that flag and it cannot change once the heap is set up. So while the old
 * generation is small and the process busy, incremental marking is off
 * ("held"): V8 then collects the old generation when it reaches its
 * allocation limit or external memory passes V8's limit for it, each time as
 * one atomic (parallel) mark-compact: 10-60 ms on the 10-20 MB heaps of
 * the bench here (~1 a run), where an incremental cycle pauses 3-10 ms.
 *
 * V8's own schedule is back ("v8") when the old generation held 64 MiB or
 * more after a mark-compact (a large heap, e.g. a million subscriptions,
 * keeps its short pauses; held again below 48 MiB; a quarter of the heap's
 * limit and three quarters of that with `--max-old-space-size` under 256), and while the process is
 * idle (fewer than 2 young-generation GCs in 10 s): V8's memory reducer, which
 * gives an idle process's garbage back, only runs with incremental marking.
 *
 * An operator's own GC flags win (nothing is changed, state 'operator flags'):
 * any of OPERATOR_FLAGS on node's command line or in NODE_OPTIONS.
 * `node --incremental-marking bin/meshbus.js start` keeps V8's default.
 */
export interface GcSchedule {
  /** 'held' (incremental marking off), 'v8' (V8's own schedule) or 'operator flags' (left alone). */
  readonly state: GcState;
  /** Ends this holder's use; V8's schedule is back and the watch ends once every holder released it. */
  release(): void;
}

export type GcState = 'held' | 'v8' | 'operator flags';

export interface GcScheduleOptions {
  /** Old-generation bytes after a mark-compact at or above which V8 schedules (default 64 MiB, or a quarter of the heap's limit when that is less). */
  releaseAtBytes?: number;
  /** ...and below which it is held again (default three quarters of releaseAtBytes: 48 MiB). */
  holdBelowBytes?: number;
  /** The window in which fewer than 2 young-generation GCs mean idle (ms, default 10,000). */
  idleWindowMs?: number;
  /** node's flags (default process.execArgv plus NODE_OPTIONS). */
  nodeFlags?: readonly string[];
  /** Told each change of state (the start-up one too). */
  onChange?: (state: 'held' | 'v8', why: string) => void;
}

/** V8 flags by which an operator chose a GC schedule (names with `-` for `_`: flagName; a leading `no` / `no-` allowed). */
const OPERATOR_FLAGS =
  /^--(no-?)?(incremental-marking\S*|initial-(old-space|heap)-size|(max|min)-semi-space-size|semi-space-growth-factor|single-threaded-gc|gc-global|gc-interval|optimize-for-size|memory-reducer\S*|concurrent-marking)(=|$)/;

/** True when `flags` (node's command-line flags) choose a GC schedule. */
export function operatorGcFlags(flags: readonly string[]): boolean {
  return flags.some((f) => OPERATOR_FLAGS.test(flagName(f)));
}

/** The next state from the last old-generation size after a mark-compact and whether the process is idle. */
export function nextGcState(now: 'held' | 'v8', oldGenBytes: number, idle: boolean, releaseAt: number, holdBelow: number): 'held' | 'v8' {
  if (idle || oldGenBytes >= releaseAt) return 'v8';
  if (now === 'held' || oldGenBytes < holdBelow) return 'held';
  return 'v8';
}

/** Bytes used by every space but the young generation's (right after a mark-compact: what survived it). */
function oldGenerationBytes(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (!s.space_name.startsWith('new_')) n += s.space_used_size;
  return n;
}

/** This process's watch: its state, how many hold it, and its end. */
interface Watch {
  readonly state: 'held' | 'v8';
  holders: number;
  end(): void;
}

let shared: Watch | undefined;

/** Holds incremental marking while the heap is small and the process busy (see GcSchedule); one watch per process, counted holders. */
export function holdIncrementalMarking(o: GcScheduleOptions = {}): GcSchedule {
  const flags = o.nodeFlags ?? nodeFlags();
  if (operatorGcFlags(flags)) return { state: 'operator flags', release() {} };
  if (!shared) shared = watch(o);
  shared.holders++;
  let released = false;
  const s = shared;
  return {
    get state() {
      return s.state;
    },
    release() {
      if (released) return;
      released = true;
      if (--s.holders === 0) {
        s.end();
        if (shared === s) shared = undefined;
      }
    },
  };
}

function watch(o: GcScheduleOptions): Watch {
  // A heap capped small (--max-old-space-size) is released at a quarter of its limit, so it is never held near it.
  const releaseAt = o.releaseAtBytes ?? Math.min(64 * 1024 * 1024, getHeapStatistics().heap_size_limit / 4);
  const holdBelow = o.holdBelowBytes ?? (releaseAt * 3) / 4;
  let state: 'held' | 'v8' = 'v8';
  let oldGen = oldGenerationBytes();
  let minors = 0;
  let idle = false;
  const decide = (why: string): void => {
    const next = nextGcState(state, oldGen, idle, releaseAt, holdBelow);
    if (next === state) return;
    state = next;
    setFlagsFromString(next === 'held' ? '--no-incremental-marking' : '--incremental-marking');
    o.onChange?.(next, why);
  };
  const observer = new PerformanceObserver((list) => {
    let major = false;
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minors++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major = true;
    }
    if (idle && minors >= 2) {
      idle = false;
      decide('busy again');
    }
    if (major) {
      oldGen = oldGenerationBytes();
      decide(`old generation ${Math.round(oldGen / 1048576)} MiB after a mark-compact`);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    idle = minors < 2;
    minors = 0;
    decide(idle ? 'idle' : 'busy');
  }, o.idleWindowMs ?? 10_000);
  timer.unref();
  decide('start');
  return {
    get state() {
      return state;
    },
    holders: 0,
    end() {
      clearInterval(timer);
      observer.disconnect();
      idle = true;
      decide('released');
    },
  };
}
