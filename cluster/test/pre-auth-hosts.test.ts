/**
 * The cluster port's pre-auth slots per host (maxPreAuthPerIp) count hosts as
 * the auth throttle does (core addressKey): IPv6 by /64, an IPv4-mapped
 * address as its IPv4. Keyed by the exact address, a host rotating through
 * its own /64 took every one of the node's maxPreAuth slots alone. Loopback
 * has one IPv6 address, so the sockets are stand-ins handed to the port's
 * admission (what its listener calls for every accepted socket).
 */
import { describe, expect, it } from 'vitest';
import { cleanups } from '@meshbus/testkit';
import { startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const cleanup = cleanups();

interface FakeSocket {
  remoteAddress: string;
  remotePort: number;
  destroyed: boolean;
  destroy(): void;
  once(ev: string, f: () => void): void;
}

const socket = (remoteAddress: string, remotePort: number): FakeSocket => ({
  remoteAddress,
  remotePort,
  destroyed: false,
  destroy() {
    this.destroyed = true;
  },
  once() {},
});

describe('pre-auth slots per host', () => {
  it('addresses of one IPv6 /64 share the per-host bound', async () => {
    const t: TestNode = await startMeshNode({ maxPreAuth: 64, maxPreAuthPerIp: 4 });
    cleanup.push(() => stopMeshNode(t));
    const port = (t.cluster as unknown as { peerPort: { admit(s: FakeSocket): boolean } }).peerPort;
    const admitted = Array.from({ length: 10 }, (_, i) => port.admit(socket(`2001:db8:1:2::${(i + 1).toString(16)}`, 40000 + i)));
    expect(admitted.filter(Boolean)).toHaveLength(4);
    // Another /64 is another host.
    expect(port.admit(socket('2001:db8:1:3::1', 41000))).toBe(true);
    // An IPv4-mapped address is its IPv4.
    expect([1, 2, 3, 4, 5].map((i) => port.admit(socket(i % 2 ? '::ffff:10.1.1.1' : '10.1.1.1', 42000 + i))).filter(Boolean)).toHaveLength(4);
  });
});
