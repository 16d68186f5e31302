#!/usr/bin/env node
// The meshbus CLI. The code lives in @meshbus/cluster (src/cli), built by `npm install`.
import { main } from '@meshbus/cluster/cli';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`meshbus: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  },
);
