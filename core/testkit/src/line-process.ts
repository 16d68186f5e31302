import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A Node child process running `code` (an ES module, with `--expose-gc`)
 * that speaks in lines: it prints one line when ready, then one line in
 * answer to each line written to its stdin. Tests that measure a node's
 * memory run the node this way, so the test runner's own heap is not in
 * the figures. `cwd` decides what its imports resolve to (e.g. core/).
 */
export class LineProcess {
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly child: ChildProcessWithoutNullStreams;

  constructor(code: string, cwd: string) {
    this.child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd, stdio: 'pipe' });
    this.child.stderr.resume();
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next line it prints; throws after `timeoutMs` or when it exited. */
  async next(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('child process did not answer');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }

  /** Writes `line` and parses the JSON line it answers. */
  async ask<T>(line: string): Promise<T> {
    this.child.stdin.write(`${line}\n`);
    return JSON.parse(await this.next()) as T;
  }

  stop(): void {
    this.child.kill();
  }
}
