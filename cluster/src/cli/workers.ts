import type { StartConfig } from './config.js';
export async function runWorkers(_cfg: StartConfig): Promise<number> {
  process.stderr.write('meshbus: --workers is not available in this build\n');
  return 1;
}
