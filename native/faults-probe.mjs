import net from 'node:net';
import { tuneAllocator } from '@meshbus/native';
if (process.argv[2] === 'tune') tuneAllocator();
const TOTAL = 400 * 1024 * 1024;
const srv = net.createServer((s) => {
  let got = 0, held = [];
  const f0 = process.resourceUsage().minorPageFault;
  s.on('data', (c) => {
    got += c.length; held.push(c); if (held.length > 200) held = [];
    if (got >= TOTAL) { console.log(process.argv[2] ?? 'default', 'faults per MB', ((process.resourceUsage().minorPageFault - f0) / (got / 1048576)).toFixed(1)); process.exit(0); }
  });
});
if (process.argv[2] === 'client') {
  const c = net.connect(Number(process.argv[3]), '127.0.0.1', () => {
    const chunk = Buffer.alloc(41_000, 7);
    let sent = 0;
    const pump = () => { while (sent < TOTAL + 1e6) { sent += chunk.length; if (!c.write(chunk)) return c.once('drain', pump); } };
    pump();
  });
  c.on('error', () => process.exit(0));
} else srv.listen(0, '127.0.0.1', async () => {
  (await import('node:child_process')).fork(new URL(import.meta.url).pathname, ['client', String(srv.address().port)]);
  if (false) net.connect(srv.address().port, '127.0.0.1', () => {
    const chunk = Buffer.alloc(41_000, 7);
    let sent = 0;
    const pump = () => { while (sent < TOTAL + 1e6) { sent += chunk.length; if (!c.write(chunk)) return c.once('drain', pump); } };
    pump();
  });
});
