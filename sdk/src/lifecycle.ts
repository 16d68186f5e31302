import type { Client } from './client.js';
import { asError, safely } from './errors.js';

/** App state as React Native's AppState reports it (or a page's visibility). */
export type AppStateValue = 'active' | 'background';

/** Foreground/background source, injected by the app (React Native: AppState). */
export interface AppStateAdapter {
  current(): AppStateValue;
  /** Calls `cb` on every change; returns a function that stops the calls. */
  subscribe(cb: (state: AppStateValue) => void): () => void;
}

/** Network reachability source, injected by the app (React Native: NetInfo; browsers: online/offline). */
export interface NetworkAdapter {
  isConnected(): boolean;
  /** Calls `cb` on every change; returns a function that stops the calls. */
  subscribe(cb: (connected: boolean) => void): () => void;
}

export interface LifecycleOptions {
  appState?: AppStateAdapter;
  network?: NetworkAdapter;
  /**
   * In the background: 'disconnect' closes the connection (no heartbeats, no
   * battery cost) and reconnects on foreground with a fresh token; 'keep'
   * leaves it open and probes it on foreground. Default 'disconnect'.
   */
  backgroundPolicy?: 'disconnect' | 'keep';
}

/**
 * Wires platform events to the client, the same way on every platform:
 * - background: `suspend()` ('disconnect' policy);
 * - foreground: `resume()` of the suspension made on background (reconnect
 *   now; getToken() runs for the new connection; the app's own `suspend()`
 *   is left alone) or, with a kept connection, `checkLiveness()` (ping now
 *   and fail fast: timers were frozen, the socket may be dead);
 * - network lost: `setOnline(false)` (reconnect attempts wait the backoff's max);
 * - network back: `setOnline(true)` (reconnect now, or probe the connection).
 * Returns a function that unbinds; it also unbinds when the client closes.
 */
export function bindLifecycle(client: Client, o: LifecycleOptions): () => void {
  const offs: Array<() => void> = [];
  try {
    return bind(client, o, offs);
  } catch (e) {
    // An adapter that throws (subscribe, current) leaves nothing bound: what it bound before is undone.
    for (const off of offs) safely(off);
    throw asError(e);
  }
}

/**
 * The entries' connect(): binds the lifecycle to a client just connected, or
 * closes it and rejects when an adapter throws (the client stayed connected,
 * reconnecting for ever, while connect() rejected: the app had no handle to close it).
 */
export async function boundTo(client: Client, o: LifecycleOptions): Promise<Client> {
  try {
    bindLifecycle(client, o);
    return client;
  } catch (e) {
    await client.close();
    throw e;
  }
}

function bind(client: Client, o: LifecycleOptions, offs: Array<() => void>): () => void {
  const policy = o.backgroundPolicy ?? 'disconnect';
  // Only a suspension made here is resumed here: the app's own suspend() (a logout, an "offline mode")
  // was undone by the next foreground or visible page, and the client reconnected against its will.
  let ours = false;
  const onAppState = (s: AppStateValue): void => {
    if (s === 'background') {
      if (policy === 'disconnect' && !client.isSuspended) {
        client.platformHold(true);
        ours = true;
      }
    } else if (ours) {
      // Not when the app suspended it meanwhile (platformHold): a logout in the background stays in force.
      ours = false;
      client.platformHold(false);
    } else client.checkLiveness();
  };
  const onNetwork = (connected: boolean): void => client.setOnline(connected);
  if (o.appState) {
    offs.push(o.appState.subscribe(onAppState));
    if (o.appState.current() === 'background') onAppState('background');
  }
  if (o.network) {
    offs.push(o.network.subscribe(onNetwork));
    // A client connected proves the network: a stale "offline" (NetInfo before its first fetch, navigator.onLine on a LAN) is not taken.
    if (!o.network.isConnected() && !client.isConnected) client.setOnline(false);
  }
  let bound = true;
  const unbind = (): void => {
    if (!bound) return;
    bound = false;
    for (const off of offs) off();
  };
  // closed() only ever resolves (with the error that closed the client, if any), and unbind cannot throw.
  void client.closed().then(unbind);
  return unbind;
}
