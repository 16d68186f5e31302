/**
 * Soak run: waves of thousands of client connections against one node
 * process (see soak-run.ts); file descriptors and RSS must return to the
 * baseline after each wave.
 *
 *   node bench/dist/soak.js [--waves 6] [--connections 3000] [--batch 500] [--json out.json]
 *
 * Needs about 2 x batch + 100 open files in this process's soft limit (the
 * node and the clients); when it is lower the script re-executes itself
 * under `ulimit -n` with the hard limit and says so. Exits 1 when the node
 * exits unexpectedly, a wave has failed clients, fds stay above the
 * baseline (+2), or RSS has not levelled off: V8 keeps the pages of its grown
 * heap, so RSS after a wave is compared with the plateau, not the warm-up
 * value: the last wave's RSS must be within 10% + 10 MB of the highest RSS
 * after any earlier wave.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openFilesLimit, runSoak } from './soak-run.js';

const { values } = parseArgs({
  options: {
    waves: { type: 'string', default: '6' },
    connections: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '500' },
    json: { type: 'string' },
  },
});
const batch = Number(values.batch);
const need = 2 * batch + 200;
const limit = openFilesLimit();
if (limit !== undefined && limit < need && !process.env['MESHBUS_SOAK_REEXEC']) {
  console.log(`soak: open-files soft limit is ${limit}, need about ${need}: re-running under "ulimit -n ${need}"`);
  const r = spawnSync('sh', ['-c', `ulimit -n ${need} && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MESHBUS_SOAK_REEXEC: '1' },
  });
  if (r.status !== 0) console.log(`soak: could not raise the limit (ulimit -n ${need}; hard limit too low?): raise it and run again`);
  process.exit(r.status ?? 1);
}

const report = await runSoak({ waves: Number(values.waves), connections: Number(values.connections), batch, log: (l) => console.log(l) });
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
const b = report.baseline;
const bad = report.waves.filter((w) => w.wave > 0 && (w.failed > 0 || w.fdAfter > b.fd + 2));
const lastW = report.waves[report.waves.length - 1]!;
const plateau = Math.max(...report.waves.slice(0, -1).map((w) => w.rssAfterMb));
if (lastW.rssAfterMb > plateau * 1.1 + 10) bad.push(lastW);
console.log(`RSS after the last wave ${lastW.rssAfterMb} MB; highest after an earlier wave ${plateau} MB`);
console.log(`baseline after warm-up: ${b.fd} fds, ${b.rssMb} MB RSS; ${report.totalConnections} connections in all; node exit code on SIGTERM ${report.exitCode}`);
const failed = bad.length > 0 || report.unexpectedExit !== undefined || report.exitCode !== 0;
if (report.unexpectedExit) console.log(report.unexpectedExit);
console.log(failed ? `SOAK: FAILED (waves ${bad.map((w) => w.wave).join(', ')})` : 'SOAK: OK');
process.exit(failed ? 1 : 0);
