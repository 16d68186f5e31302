#!/usr/bin/env node
// The meshbus command. The code is this package's src/, built to dist/ by
// `npm install` (the root's prepare runs tsc -b).
// Three small modules first and alone, main.js after: the static imports of a
// module are all loaded and parsed before any of them runs (a few hundred ms).
// startup-tiering keeps V8's optimizing compiler off while `meshbus start`
// loads (called before anything else runs), launcher-watch records the
// launcher's pid, early-signals keeps a SIGTERM or SIGINT to `meshbus start`
// meanwhile (it must drain, not kill), and a SIGHUP (ignored, with a line).
import { holdStartupTiering } from './dist/startup-tiering.js';
import './dist/launcher-watch.js';
import './dist/early-signals.js';

await holdStartupTiering(process.argv.slice(2));

const { run } = await import('./dist/main.js');
run(process.argv.slice(2));
