import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

/**
 * Issue #16: the SDK README documents every option. Reads the option
 * interfaces from the sources (each `name?:` field of the interfaces below)
 * and checks each name has a row in the README's "Options" section.
 */

const src = (f: string): string => readFileSync(new URL(`../src/${f}`, import.meta.url), 'utf8');

/** The field names of `interface <name>` in `text` (top-level members only). */
function fields(text: string, name: string): string[] {
  const start = text.indexOf(`interface ${name} `);
  expect(start, `interface ${name}`).toBeGreaterThanOrEqual(0);
  const body = text.slice(text.indexOf('{', start) + 1);
  const out: string[] = [];
  let depth = 0;
  for (const line of body.split('\n')) {
    if (depth === 0) {
      const m = /^ {2}(?:readonly )?([A-Za-z_$][\w$]*)\??:/.exec(line);
      if (m) out.push(m[1]!);
    }
    for (const ch of line) {
      if (ch === '{' || ch === '(') depth++;
      else if (ch === '}' || ch === ')') depth--;
    }
    if (depth < 0) break;
  }
  return out;
}

it('every option of connect, publish, request, subscribe and the entries has a row in the README Options section', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Options\n'), readme.indexOf('## Guarantees\n'));
  expect(section.length).toBeGreaterThan(100);
  const options = [
    ...fields(src('options.ts'), 'ConnectOptions'),
    ...fields(src('options.ts'), 'CoreConnectOptions'),
    ...fields(src('options.ts'), 'PublishOptions'),
    ...fields(src('options.ts'), 'RequestOptions'),
    ...fields(src('subscription.ts'), 'SubscribeOptions'),
    ...fields(src('browser.ts'), 'BrowserConnectOptions'),
    ...fields(src('mobile.ts'), 'MobileConnectOptions'),
    ...fields(src('lifecycle.ts'), 'LifecycleOptions'),
    'tls', // the Node entry's connect(): ConnectOptions & { tls?: TlsClientOptions }
  ];
  // The parser found the interfaces' fields (guards against a silently empty list).
  expect(options).toEqual(expect.arrayContaining(['recover', 'ack', 'durable', 'latest', 'delay', 'at', 'since', 'getToken', 'outbox', 'backgroundPolicy']));
  const missing = options.filter((o) => !section.includes(`| \`${o}\` |`));
  expect(missing).toEqual([]);
});
