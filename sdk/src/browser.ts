/**
 * Browser entry: the platform-free core plus the global WebSocket, and the
 * page lifecycle (online/offline, visibility) wired to the client. Only
 * ws:// and wss:// servers can be used from a browser.
 */
import { connect as coreConnect, type Client } from './client.js';
import { boundTo, type AppStateAdapter, type NetworkAdapter } from './lifecycle.js';
import type { ConnectOptions } from './options.js';
import type { TransportFactory } from './transport.js';
import { WsTransport, type WebSocketConstructor } from './ws-transport.js';
import { optionsObject } from './option-checks.js';
import { checkKind } from './errors.js';

export * from './core.js';
export { bindLifecycle, type AppStateAdapter, type AppStateValue, type LifecycleOptions, type NetworkAdapter } from './lifecycle.js';

export interface BrowserConnectOptions extends ConnectOptions {
  /** WebSocket constructor; default the global one. */
  WebSocket?: WebSocketConstructor;
  /**
   * React to the page: offline slows reconnect attempts (one per backoff max), online reconnects
   * now (or probes the connection), becoming visible probes the connection
   * (`checkLiveness`). Default true.
   */
  pageLifecycle?: boolean;
}

/** WebSocket transports from the global constructor; undefined (unusable) for TCP servers. */
export function webSocketTransport(ctor?: WebSocketConstructor): TransportFactory {
  return (server) => {
    if (server.scheme === 'tcp' || server.scheme === 'tls') return undefined;
    const C = ctor ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    return C ? new WsTransport(C) : undefined;
  };
}

export async function connect(servers: string | string[], given?: BrowserConnectOptions): Promise<Client> {
  const options = optionsObject(given);
  checkKind('WebSocket', options.WebSocket, 'function');
  checkKind('pageLifecycle', options.pageLifecycle, 'boolean');
  const client = await coreConnect(servers, { transport: webSocketTransport(options.WebSocket), ...options });
  const page = options.pageLifecycle !== false && pageAdapters();
  // A hidden page keeps its connection: browsers keep sockets of background tabs alive.
  return page ? boundTo(client, { ...page, backgroundPolicy: 'keep' }) : client;
}

interface EventTargetLike {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
}

/** The page's visibility and online state as lifecycle adapters; undefined outside a page. */
export function pageAdapters(): { appState?: AppStateAdapter; network?: NetworkAdapter } | undefined {
  const g = globalThis as unknown as EventTargetLike & {
    document?: EventTargetLike & { visibilityState?: string };
    navigator?: { onLine?: boolean };
  };
  if (typeof g.addEventListener !== 'function') return undefined;
  const doc = g.document;
  const appState: AppStateAdapter | undefined =
    doc && typeof doc.addEventListener === 'function'
      ? {
          current: () => (doc.visibilityState === 'hidden' ? 'background' : 'active'),
          subscribe(cb) {
            const fn = (): void => cb(doc.visibilityState === 'hidden' ? 'background' : 'active');
            doc.addEventListener('visibilitychange', fn);
            return () => doc.removeEventListener('visibilitychange', fn);
          },
        }
      : undefined;
  const network: NetworkAdapter = {
    isConnected: () => g.navigator?.onLine !== false,
    subscribe(cb) {
      const on = (): void => cb(true);
      const off = (): void => cb(false);
      g.addEventListener('online', on);
      g.addEventListener('offline', off);
      return () => {
        g.removeEventListener('online', on);
        g.removeEventListener('offline', off);
      };
    },
  };
  return { appState, network };
}
