/** The cluster's time options arm timers (redial, ping, handshake): past the longest Node timer (2^31 − 1 ms) one fires after 1 ms, so they are refused at start. */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, MAX_TIMER_MS, silentLogger, startNode, type MeshNode } from '@meshbus/core';
import { ClusterNode } from '../src/index.js';

let n: MeshNode | undefined;
afterEach(async () => {
  await n?.close();
});

describe('cluster timer options', () => {
  it('refuses pingInterval, redialMin/Max and handshakeTimeout past the longest timer', async () => {
    n = await startNode({ port: 0, logger: silentLogger });
    for (const k of ['pingInterval', 'redialMin', 'redialMax', 'handshakeTimeout'] as const) {
      expect(() => new ClusterNode(n!, { port: 0, redialMin: 1, [k]: MAX_TIMER_MS + 1 }), k).toThrow(ConfigError);
    }
  });
});
