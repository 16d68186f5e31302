import { createServer } from 'node:net';

/**
 * A TCP port free on `host` right now (bound, then released). Another
 * process may take it before the caller binds it: fine for tests, local
 * meshes and worker processes, not a reservation.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
