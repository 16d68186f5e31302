import { expect, it } from 'vitest';
import { START_SETTINGS, loadStartConfig } from '../src/config.js';

it('--max-token-lifetime and MESHBUS_MAX_TOKEN_LIFETIME set the node\'s maxTokenLifetime (seconds)', () => {
  expect(loadStartConfig({ 'max-token-lifetime': '3600' }, {}).maxTokenLifetime).toBe(3600);
  expect(loadStartConfig({}, { MESHBUS_MAX_TOKEN_LIFETIME: '60' }).maxTokenLifetime).toBe(60);
  expect(loadStartConfig({}, {}).maxTokenLifetime).toBeUndefined();
  expect(() => loadStartConfig({ 'max-token-lifetime': 'forever' }, {})).toThrow(/max-token-lifetime/);
});

it('--max-token-lifetime help says what it bounds: each HELLO/AUTH starts the period again, so a token without iat is not cut at a lifetime', () => {
  const help = START_SETTINGS.maxTokenLifetime.help;
  // The old text promised a bound on a token "whatever its exp says", which a token with exp and no iat escapes by being sent again.
  expect(help).not.toMatch(/whatever its exp says/);
  expect(help).toMatch(/HELLO or latest AUTH/);
  expect(help).toMatch(/iat/);
  expect(help).toMatch(/without iat may be sent again/);
});
