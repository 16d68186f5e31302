import { describe, expect, it } from 'vitest';
import { ERROR_CODES, Frame, FrameType, decodeError, decodeGoodbye, encodeBody, errorFrame, goodbyeFrame, nackFrame } from '../src/index.js';

const frame = (bytes: Uint8Array): Frame => new Frame(bytes, 0, bytes.length);

/** ERROR, NACK and GOODBYE come from one builder, whoever sends them (sessions, peer links, refusals, durability). */
describe('error frames', () => {
  it('errorFrame carries the code number and the detail only, on the given correlation', () => {
    const f = frame(errorFrame('MB_ERR_PERMISSION_DENIED', 7, `${ERROR_CODES.MB_ERR_PERMISSION_DENIED.message}: publish to "a"`));
    expect([f.type, f.correlation]).toEqual([FrameType.ERROR, 7]);
    // The code's own text is not repeated: receivers prefix it themselves.
    expect(decodeError(f.payload)).toEqual({ code: 2004, message: 'publish to "a"' });
    expect(decodeError(frame(errorFrame('MB_ERR_DRAINING', 0, 'bye')).payload)).toEqual({ code: 2012, message: 'bye' });
  });

  it('errorFrame carries a count when given (a drop report), and decodeError refuses one that is not a uint', () => {
    const f = frame(errorFrame('MB_ERR_EVENTS_DROPPED', 5, '12 events dropped', 12));
    expect([f.type, f.correlation]).toEqual([FrameType.ERROR, 5]);
    expect(decodeError(f.payload)).toEqual({ code: 2016, message: '12 events dropped', count: 12 });
    expect(ERROR_CODES.MB_ERR_EVENTS_DROPPED.fatal).toBe(false);
    const bad = encodeBody({ code: 2016, message: 'x', count: -1 });
    expect(() => decodeError(bad)).toThrow(/ERROR body/);
  });

  it('nackFrame has the ERROR body on a NACK', () => {
    const f = frame(nackFrame('MB_ERR_STORE_UNAVAILABLE', 3, 'durable store: down'));
    expect([f.type, f.correlation]).toEqual([FrameType.NACK, 3]);
    expect(decodeError(f.payload)).toMatchObject({ code: ERROR_CODES.MB_ERR_STORE_UNAVAILABLE.num, message: 'durable store: down' });
  });

  it('goodbyeFrame names the code, the reason and, when given, where to reconnect', () => {
    const g = frame(goodbyeFrame('MB_ERR_DRAINING', 'node shutting down', ['127.0.0.1:4222']));
    expect([g.type, g.correlation]).toEqual([FrameType.GOODBYE, 0]);
    expect(decodeGoodbye(g.payload)).toEqual({ code: 2012, reason: 'node shutting down', reconnect: ['127.0.0.1:4222'] });
    expect(decodeGoodbye(frame(goodbyeFrame('MB_ERR_DRAINING', 'node leaving')).payload)).toEqual({ code: 2012, reason: 'node leaving' });
  });
});
