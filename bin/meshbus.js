#!/usr/bin/env node
// The meshbus command. The code is this package's src/, built to dist/ by
// `npm install` (the root's prepare runs tsc -b).
import { run } from './dist/main.js';

run(process.argv.slice(2));
