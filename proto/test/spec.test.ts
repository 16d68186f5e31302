import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME, Flags, FrameType, OFF } from '../src/constants.js';
import { ERROR_CODES } from '../src/errors.js';
import { decodeFrames } from '../src/frame-decoder.js';
import { encodeFrame } from '../src/frame-encoder.js';
import { utf8Encode } from '../src/utf8.js';
import { hex, unhex } from './helpers.js';

const SPEC_FILE = fileURLToPath(new URL('../SPEC.md', import.meta.url));
const START = '<!-- error-table:start -->';
const END = '<!-- error-table:end -->';

/** The error table of SPEC.md section 12, generated from ERROR_CODES. */
function errorTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, d]) => `| ${d.num} | ${code} | ${d.kind} | ${d.fatal ? 'yes' : 'no'} | ${d.message} |`);
  return [START, '| Num | Code | Kind | Fatal | Meaning |', '|---:|---|---|---|---|', ...rows, END].join('\n');
}

let spec = readFileSync(SPEC_FILE, 'utf8');
// UPDATE_SPEC=1 npx vitest run proto/test/spec.test.ts rewrites the table after errors.ts changed.
if (process.env.UPDATE_SPEC) {
  spec = spec.slice(0, spec.indexOf(START)) + errorTable() + spec.slice(spec.indexOf(END) + END.length);
  writeFileSync(SPEC_FILE, spec);
}

describe('SPEC.md agrees with the code', () => {
  it('error table is the one generated from ERROR_CODES (UPDATE_SPEC=1 to regenerate)', () => {
    expect(spec.slice(spec.indexOf(START), spec.indexOf(END) + END.length)).toBe(errorTable());
  });

  it('error table lists exactly ERROR_CODES, in order', () => {
    const block = spec.slice(spec.indexOf('<!-- error-table:start -->'), spec.indexOf('<!-- error-table:end -->'));
    const rows = [...block.matchAll(/^\| (\d+) \| (MB_ERR_\w+) \| (\w+) \| (yes|no) \| (.+) \|$/gm)].map((m) => [
      Number(m[1]),
      m[2],
      m[3],
      m[4] === 'yes',
      m[5],
    ]);
    const want = Object.entries(ERROR_CODES).map(([code, d]) => [d.num, code, d.kind, d.fatal, d.message]);
    expect(rows).toEqual(want);
  });

  it('header table gives every field at its offset and size', () => {
    const names: Record<string, keyof typeof OFF> = {
      length: 'LENGTH', magic: 'MAGIC', version: 'VERSION', type: 'TYPE', flags: 'FLAGS', hops: 'HOPS', maxHops: 'MAX_HOPS',
      topicHash: 'TOPIC_HASH', origin: 'ORIGIN', seq: 'SEQ', timestamp: 'TIMESTAMP', correlation: 'CORRELATION',
      topicLen: 'TOPIC_LEN', extLen: 'EXT_LEN', payloadLen: 'PAYLOAD_LEN', sid: 'SID', reserved: 'RESERVED', crc: 'CRC',
    };
    const section = spec.slice(spec.indexOf('### 3.1'), spec.indexOf('### 3.2'));
    const rows = [...section.matchAll(/^\| (\d+) \| (\d+) \| [^|]+ \| (\w+) \|/gm)];
    expect(rows.map((r) => r[3])).toEqual(Object.keys(names));
    let end = 0;
    for (const r of rows) {
      expect(Number(r[1]), r[3]).toBe(OFF[names[r[3]!]!]);
      expect(Number(r[1])).toBe(end);
      end += Number(r[2]);
    }
    expect(end).toBe(64);
  });

  it('frame type table lists every type with its code', () => {
    const rows = [...spec.matchAll(/^\| `0x([0-9a-f]{2})` \| (\w+) \|/gm)].map((m) => [m[2], parseInt(m[1]!, 16)]);
    expect(Object.fromEntries(rows)).toEqual(FrameType);
  });

  it('the worked example is what the encoder produces and decodes as described', () => {
    const exampleHex = /<!-- example-hex: ([0-9a-f]+) -->/.exec(spec)![1]!;
    const dump = spec.slice(spec.indexOf('## 13.'));
    const dumped = [...dump.matchAll(/^[0-9a-f]{4}: ((?:[0-9a-f]{2} ?)+)$/gm)].map((m) => m[1]!.replace(/ /g, '')).join('');
    expect(dumped).toBe(exampleHex);
    const bytes = encodeFrame({
      type: FrameType.PUB,
      topic: 'orders.eu.created',
      flags: Flags.ACK_REQUESTED,
      correlation: 7,
      origin: unhex('6e6f6465000000a1'),
      seq: 42,
      timestamp: 1_700_000_000_000,
      payload: utf8Encode('{"id":42}'),
    });
    expect(hex(bytes)).toBe(exampleHex);
    const f = decodeFrames(bytes)[0]!;
    expect([f.size, f.topic, f.seq, f.correlation, f.topicHash]).toEqual([90, 'orders.eu.created', 42, 7, 0xb402fe9a]);
  });

  it('states the default limits and the CRC check value', () => {
    expect(spec).toContain(String(DEFAULT_MAX_FRAME));
    expect(spec).toContain('0xE3069283');
    expect(spec).toContain('1048576');
  });
});
