/**
 * Options that arm timers are bounded by the longest Node timer (2^31 − 1 ms):
 * past it a timer fires after 1 ms (TimeoutOverflowWarning). A node started
 * with handshakeTimeout 3,000,000,000 (a slip of units) closed every client
 * connection at once with MB_ERR_HANDSHAKE_TIMEOUT; it is now refused at start.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, MAX_TIMER_MS, MeshNode, silentLogger, startNode } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';
import { startHttp } from '../src/http/index.js';

describe('timer options', () => {
  it('a node refuses a time option past the longest timer, and takes the longest', async () => {
    for (const k of ['handshakeTimeout', 'pingInterval', 'writeDeadline', 'drainTimeout', 'maxStall'] as const) {
      expect(() => new MeshNode({ port: 0, logger: silentLogger, [k]: MAX_TIMER_MS + 1 }), k).toThrow(ConfigError);
    }
    const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: MAX_TIMER_MS, pingInterval: MAX_TIMER_MS });
    await n.close();
  });

  it('the WebSocket gateway refuses a ping interval past it, the HTTP API a request timeout past it', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    try {
      expect(() => new WsGateway(n, { port: 0, pingInterval: MAX_TIMER_MS + 1 })).toThrow(ConfigError);
      expect(() => new WsGateway(n, { port: 0, pingInterval: -1 })).toThrow(ConfigError);
      await expect(startHttp(n, { port: 0, host: '127.0.0.1', maxRequestTimeout: MAX_TIMER_MS + 1 })).rejects.toBeInstanceOf(ConfigError);
    } finally {
      await n.close();
    }
  });

  it('durability refuses an ACK or write timeout past it, and a retry backoff that would double past it', () => {
    const durable = (o: object) => new MeshNode({ port: 0, logger: silentLogger, durable: { redis: 'redis://127.0.0.1:1', ...o } });
    expect(() => durable({ queues: { ackTimeoutMs: MAX_TIMER_MS + 1 } })).toThrow(ConfigError);
    expect(() => durable({ writeTimeoutMs: MAX_TIMER_MS + 1 })).toThrow(ConfigError);
    // 5 attempts: the 5th waits backoffMs x 16.
    expect(() => durable({ queues: { backoffMs: Math.floor(MAX_TIMER_MS / 16) + 1 } })).toThrow(/backoffMs/);
    expect(() => durable({ queues: { backoffMs: Math.floor(MAX_TIMER_MS / 16), ackTimeoutMs: MAX_TIMER_MS } })).not.toThrow();
  });
});
