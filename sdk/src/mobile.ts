/**
 * Mobile / embedded entry (React Native, other JS runtimes): the browser
 * core with the app's lifecycle injected, so nothing here depends on React
 * Native. Uses only WebSocket (global or given), timers and Uint8Array; UTF-8
 * goes through proto's helpers, which work without TextEncoder/TextDecoder.
 */
import { connect as coreConnect, type Client } from './client.js';
import { boundTo, type LifecycleOptions } from './lifecycle.js';
import type { ConnectOptions } from './options.js';
import { webSocketTransport } from './browser.js';
import type { WebSocketConstructor } from './ws-transport.js';
import { optionsObject } from './option-checks.js';
import { checkKind } from './errors.js';

export * from './core.js';
export { bindLifecycle, type AppStateAdapter, type AppStateValue, type LifecycleOptions, type NetworkAdapter } from './lifecycle.js';
export { webSocketTransport } from './browser.js';

export interface MobileConnectOptions extends ConnectOptions, LifecycleOptions {
  /** WebSocket constructor; default the global one. */
  WebSocket?: WebSocketConstructor;
}

/**
 * Connects and binds the injected adapters: background → disconnect (by
 * `backgroundPolicy`, default 'disconnect'), foreground → reconnect with a
 * fresh getToken() or probe the kept connection; network lost → reconnect
 * attempts slow to one per backoff max; network back → reconnect now.
 */
export async function connect(servers: string | string[], given?: MobileConnectOptions): Promise<Client> {
  const options = optionsObject(given);
  checkKind('WebSocket', options.WebSocket, 'function');
  checkKind('appState', options.appState, 'object');
  checkKind('network', options.network, 'object');
  return boundTo(await coreConnect(servers, { transport: webSocketTransport(options.WebSocket), ...options }), options);
}
