import { ClientError } from '@meshbus/proto';
import type { Connection } from './connection.js';
import type { Engine } from './engine.js';
import { connectionClosed } from './errors.js';
import { owes } from './offline-order.js';
import { after } from './timer.js';
import type { Status } from './types.js';

/**
 * Client.drain(): unsubscribes everything, waits until the node has
 * processed what was sent before (a PING's PONG) and every acked publish is
 * answered, following the client across connections while something is
 * owed, then closes. `flush(ms)` is the client's round trip, `close()` its
 * close; `suspended`: the app's own suspend() holds (no connection comes
 * until resume(): it closes at once). Past `drainTimeout` (30 s) it closes
 * as close() does and rejects with ClientError MB_ERR_TIMEOUT, also when the
 * PONG it waits for is what is late (the client's own bytes still unsent).
 * A connection it used (or, made offline, the one lost last) that ends
 * before the node confirmed every plain event given to it (a PONG, a
 * draining node's GOODBYE) makes it reject with MB_ERR_CONNECTION_CLOSED
 * once closed: those events may not have arrived. Events given during the
 * drain are waited for the same way.
 */
export async function drainClient(e: Engine, flush: (timeout: number) => Promise<void>, close: () => Promise<void>, suspended: boolean): Promise<void> {
  if (e.state === 'closed' || e.state === 'draining') return e.closedPromise.then(() => undefined);
  // Suspended by the app: no connection comes until resume(), so waiting for one never settled (a process exited without a `closed` event).
  if (!e.conn && suspended) return close();
  e.state = 'draining';
  const subs = e.dispatcher.subs;
  for (const sub of subs.values()) {
    sub.draining = true;
    e.unsub(sub.sid); // offline: nothing to send, and the next connection does not subscribe it again
  }
  if (e.inboxSid) e.unsub(e.inboxSid);
  // Requests made offline are not sent: their replies would come to the inbox this drain unsubscribes (as one made now).
  e.waitingRequests.rejectAll(connectionClosed('client is draining'));
  // Past drainTimeout it closes as close() does, ending every wait below (one for a node that never came was for ever).
  const ms = e.options.drainTimeout ?? 30_000;
  const deadline = Date.now() + ms;
  let late = false;
  const timer = after(ms, () => {
    late = true;
    void close();
  });
  const until = (type: Status['type']): Promise<void> =>
    new Promise((resolve) => {
      const off = e.feed.emitter.on('status', (s) => {
        if (s.type === type || s.type === 'closed') resolve(off());
      });
    });
  // Offline, or its connection lost with something owed (a draining node's GOODBYE gives back the acked publishes it did
  // not take), it waits for the next connection, which sends what waited; so does what is still owed after a flush
  // (flushing again was a PING/PONG loop: an outbox whose takeAll() failed, a draining node's NACKs).
  // A connection the drain used that ended with events the node never confirmed (killed, SIGTERMed, cut): they may not
  // have arrived, and nothing else reports them. Resolving then was a success with 0 of 300 delivered.
  // The current connection, or offline the one lost last (its events died with it unless confirmed: drain() made while
  // reconnecting resolved, 0 of 300).
  let used: Connection | undefined = e.latest;
  let lost = 0;
  const unconfirmed = (c: Connection | undefined): number => (c && !c.isOpen ? c.eventsGiven - c.eventsConfirmed : 0);
  for (let conn = e.conn; e.state === 'draining'; conn = e.conn) {
    if (used !== conn && (lost = unconfirmed(used)) > 0) break;
    if (!conn) {
      await until('connected');
      continue;
    }
    used = conn;
    // Acked publishes (made before or during the drain, or offline) get their ACK: the node stores before it answers, after
    // the PONG. The PONG is waited for until drainTimeout, not requestTimeout: a drain that gave up on it at 5 s closed with
    // megabytes unsent and resolved (40 of 1,000 events delivered from a node stopped for 8 s). Not back in time: late.
    const outcome = await flush(Math.max(1, deadline - Date.now())).then(
      () => 'answered',
      (err: unknown) => ((err as ClientError).code === 'MB_ERR_TIMEOUT' ? 'late' : 'lost'),
    );
    if (outcome === 'late') late = true;
    if (late) break;
    if (outcome === 'lost') continue;
    await e.pending.acksSettled();
    // Events given after the PING (publishes remain allowed; handlers' replies): another round trip covers them, until
    // drainTimeout. Closing without it resolved with 235 of 600 lost once the process exited.
    if (conn.isOpen && conn.eventsGiven > conn.eventsConfirmed) continue;
    if (!owes(e)) break;
    if (e.conn === conn) await until('disconnected');
  }
  // The client closed meanwhile (reconnect off or exhausted, close()): the last connection is checked here.
  if (!late && !lost) lost = unconfirmed(used);
  clearTimeout(timer);
  for (const sub of [...subs.values()]) e.dispatcher.end(sub, 'unsubscribed', false);
  await close();
  if (late) throw new ClientError('MB_ERR_TIMEOUT', `drain not done within drainTimeout (${ms} ms)`);
  if (lost > 0) throw connectionClosed(`lost during drain with ${lost} events unconfirmed`);
}
