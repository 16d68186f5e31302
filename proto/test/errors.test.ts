import { describe, expect, it } from 'vitest';
import { ClientError, ERROR_CODES, ProtocolError, SessionError, StoreError, codeFromNumber, errorFromCode, isMeshbusError, thrownText, type ErrorCode } from '../src/errors.js';

describe('ERROR_CODES built from its rows', () => {
  it('gives each code the kind of its thousand and errorFromCode the class of that kind', () => {
    const classes = { protocol: ProtocolError, session: SessionError, client: ClientError, store: StoreError };
    const kinds: Record<number, string> = { 1: 'protocol', 2: 'session', 3: 'client', 4: 'store', 9: 'session' };
    for (const [code, d] of Object.entries(ERROR_CODES) as [ErrorCode, (typeof ERROR_CODES)[ErrorCode]][]) {
      expect(d.kind, code).toBe(kinds[Math.floor(d.num / 1000)]);
      expect(Object.keys(d)).toEqual(['num', 'kind', 'fatal', 'message']);
      expect(typeof d.fatal).toBe('boolean');
      const e = errorFromCode(code, 'why');
      expect(e, code).toBeInstanceOf(classes[d.kind]);
      expect(isMeshbusError(e)).toBe(true);
      expect([e.code, e.num, e.fatal, e.message]).toEqual([code, d.num, d.fatal, `${d.message}: why`]);
      expect(codeFromNumber(d.num)).toBe(code);
    }
    expect(ERROR_CODES.MB_ERR_BAD_MAGIC).toEqual({ num: 1001, kind: 'protocol', fatal: true, message: 'frame does not start with the meshbus magic' });
    expect(ERROR_CODES.MB_ERR_UNSUPPORTED_MEDIA_TYPE).toEqual({ num: 9010, kind: 'session', fatal: false, message: 'content type not accepted' });
    expect(codeFromNumber(1234)).toBe('MB_ERR_INTERNAL');
  });
});

describe('MeshbusError messages', () => {
  it('prefix the code\'s text once: a detail that already starts with it (a wrapped error of the same code) is not prefixed again', () => {
    const inner = new ClientError('MB_ERR_CONNECT_FAILED', 'tcp://h:1: connect ECONNREFUSED');
    expect(inner.message).toBe('could not connect to any server: tcp://h:1: connect ECONNREFUSED');
    expect(new ClientError('MB_ERR_CONNECT_FAILED', inner.message).message).toBe(inner.message);
    expect(new ClientError('MB_ERR_CONNECT_FAILED').message).toBe('could not connect to any server');
    // Only the exact "<text>: " prefix counts.
    expect(new ClientError('MB_ERR_CONNECT_FAILED', 'could not connect to any server!').message).toBe('could not connect to any server: could not connect to any server!');
  });
});

describe('thrownText', () => {
  it('is String(value), and a value String() throws on still gets a text', () => {
    expect(thrownText(new Error('boom'))).toBe('Error: boom');
    expect(thrownText(42)).toBe('42');
    expect(thrownText(Object.create(null))).toBe('[object Object]');
    expect(thrownText({ toString: () => { throw new Error('no'); } })).toBe('[object Object]');
    expect(thrownText(Symbol('s'))).toBe('Symbol(s)');
  });
});
