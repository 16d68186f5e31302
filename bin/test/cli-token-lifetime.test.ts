import { expect, it } from 'vitest';
import { loadStartConfig } from '../src/config.js';

it('--max-token-lifetime and MESHBUS_MAX_TOKEN_LIFETIME set the node\'s maxTokenLifetime (seconds)', () => {
  expect(loadStartConfig({ 'max-token-lifetime': '3600' }, {}).maxTokenLifetime).toBe(3600);
  expect(loadStartConfig({}, { MESHBUS_MAX_TOKEN_LIFETIME: '60' }).maxTokenLifetime).toBe(60);
  expect(loadStartConfig({}, {}).maxTokenLifetime).toBeUndefined();
  expect(() => loadStartConfig({ 'max-token-lifetime': 'forever' }, {})).toThrow(/max-token-lifetime/);
});
