import { describe, expect, it } from 'vitest';
import { ConfigError, resolveDurable } from '../src/index.js';
import { parseRedisTarget } from '../src/durable/redis-target.js';

describe('durable.redis: one server, a cluster or a sentinel setup', () => {
  it('reads the three URL forms', () => {
    expect(parseRedisTarget('redis://127.0.0.1:6379/2')).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6379/2', db: 2 });
    expect(parseRedisTarget('rediss://u:pw@[::1]/?family=6')).toMatchObject({ kind: 'single', db: 0 });
    // As ioredis reads them: no host is localhost, ?db= a database.
    expect(parseRedisTarget('redis:///5')).toMatchObject({ kind: 'single', db: 5 });
    expect(parseRedisTarget('redis://h/?db=3')).toMatchObject({ kind: 'single', db: 3 });
    expect(parseRedisTarget('redis-cluster://10.0.0.1:7000,10.0.0.2:7001,h3')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'h3', port: 6379 },
      ],
    });
    expect(parseRedisTarget('redis-sentinel://:s%40cret@s1:26379,[::1]:26380/my%20master/3')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'my master',
      db: 3,
      password: 's@cret',
    });
    expect(parseRedisTarget('redis-cluster://app:pw@h1:1')).toMatchObject({ username: 'app', password: 'pw' });
  });

  it('refuses what is none of them, naming the problem and never the password', () => {
    expect(() => parseRedisTarget('rediss-cluster://h1:1')).toThrow(/TLS to a Redis Cluster or through sentinels is not supported yet/);
    // One server's URL is checked as ioredis reads it: before, a port that is no number was found once the
    // node served (`Invalid URL`, exit 1) and a database that is no number not at all (SELECT refused, the
    // store written to database 0).
    for (const bad of ['redis://127.0.0.1:notaport', 'redis://h:6379/abc', 'redis://h:6379/1/2', 'redis://u:topsecret@h:99999', 'redis://h/?db=x', 'http://h:1', 'redis-cluster://', 'redis-cluster://h1:1/0', 'redis-sentinel://h1:1', 'redis-sentinel://h1:1/m/x', 'redis-sentinel://u:topsecret@h1:99999/m', 'redis-cluster://h1:1,,h2:2']) {
      let err: unknown;
      try {
        parseRedisTarget(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).not.toContain('topsecret');
    }
  });

  it('waitReplicas: a non-negative integer, with a timeout below writeTimeoutMs', () => {
    expect(resolveDurable({ redis: 'redis://h:1', waitReplicas: 1 })).toMatchObject({ waitReplicas: 1, waitTimeoutMs: 1000, target: { kind: 'single' } });
    expect(() => resolveDurable({ redis: 'redis://h:1', waitReplicas: -1 })).toThrow(ConfigError);
    // At most 16: a larger number is a typo that no Redis meets (every durable publish NACKed).
    expect(resolveDurable({ redis: 'redis://h:1', waitReplicas: 16 })).toMatchObject({ waitReplicas: 16 });
    expect(() => resolveDurable({ redis: 'redis://h:1', waitReplicas: 17 })).toThrow('durable.waitReplicas must be an integer from 0 to 16, got 17');
    expect(() => resolveDurable({ redis: 'redis://h:1', waitReplicas: 1.5 })).toThrow(ConfigError);
    expect(() => resolveDurable({ redis: 'redis://h:1', waitReplicas: 1, waitTimeoutMs: 5000, writeTimeoutMs: 5000 })).toThrow(ConfigError);
  });
});
