/**
 * Chaos run: a 3-to-5-node mesh of real processes under steady publishing
 * while nodes are SIGKILLed and restarted and a peer link is dropped or
 * stalled through a TCP proxy (see chaos-mesh.ts for what is measured).
 *
 *   node bench/dist/chaos.js [--duration 120] [--nodes 3] [--fault-every 8]
 *        [--fault-for 3] [--rate 100] [--publishers 3] [--subscribers 3] [--json out.json]
 *        [--redis auto|off|redis://host:port] [--durable-publishers 2] [--durable-rate 20]
 *        [--job-rate 20] [--durable-drain 70]
 *
 * Exits 1 when a check fails: an unexpected node exit, a non-zero exit code
 * on SIGTERM, a duplicate or out-of-order delivery, events that did not
 * resume within 20 s of a fault healing, or (with Redis, see
 * chaos-durable.ts) an acknowledged durable event lost, duplicated or out of
 * order, an acknowledged job lost or a job delivered twice to the group
 * without its consumer's node being lost mid-job. `--durable-drain` (s) is how
 * long the end waits for acked events and jobs still missing: jobs held by a
 * killed node come back after BullMQ's stall check (lock 30 s, check every
 * 30 s), hence 70 s by default here.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { durableFailed } from './chaos-durable.js';
import { runChaos, summarize } from './chaos-mesh.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '120' },
    nodes: { type: 'string', default: '3' },
    'fault-every': { type: 'string', default: '8' },
    'fault-for': { type: 'string', default: '3' },
    rate: { type: 'string', default: '100' },
    publishers: { type: 'string', default: '3' },
    subscribers: { type: 'string', default: '3' },
    json: { type: 'string' },
    redis: { type: 'string', default: 'auto' },
    'durable-publishers': { type: 'string', default: '2' },
    'durable-rate': { type: 'string', default: '20' },
    'job-rate': { type: 'string', default: '20' },
    'durable-drain': { type: 'string', default: '70' },
  },
});

const report = await runChaos({
  nodes: Number(values.nodes),
  durationMs: Number(values.duration) * 1000,
  faultEveryMs: Number(values['fault-every']) * 1000,
  faultMs: Number(values['fault-for']) * 1000,
  rate: Number(values.rate),
  publishers: Number(values.publishers),
  subscribers: Number(values.subscribers),
  redis: values.redis,
  durablePublishers: Number(values['durable-publishers']),
  durableRate: Number(values['durable-rate']),
  jobRate: Number(values['job-rate']),
  durableDrainMs: Number(values['durable-drain']) * 1000,
  log: (l) => console.log(l),
});
console.log(summarize(report));
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
const failed =
  report.unexpectedExits.length > 0 ||
  report.finalExitCodes.some((c) => c !== 0) ||
  report.duplicates > 0 ||
  report.reordered > 0 ||
  report.maxFlowAfterHealMs === null ||
  durableFailed(report.durable);
console.log(failed ? 'CHAOS: FAILED' : 'CHAOS: OK');
process.exit(failed ? 1 : 0);
