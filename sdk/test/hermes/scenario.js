// The app's session, run in both engines: recorded in Node against a real node,
// replayed in hermes against the recording. `m` is the mobile SDK (the bundle's
// `meshbusMobile`); `host` gives the WebSocket class, the server URL and
// `step(name)` (the test's side of the session: other clients publishing; a
// no-op in the replay, where those frames come from the recording).
// Resolves with what the app saw; the test compares both engines' results.
var meshbusScenario = async function (m, host) {
  var out = { statuses: [], events: [], errors: [] };
  function until(pred, what) {
    return new Promise(function (resolve, reject) {
      var n = 0;
      (function poll() {
        if (pred()) return resolve();
        if (++n > 500) return reject(new Error('timed out waiting for ' + what));
        setTimeout(poll, 10);
      })();
    });
  }
  // React Native's AppState, injected: the scenario flips it as the OS would.
  var app = { value: 'active', listeners: [] };
  var appState = {
    current: function () { return app.value; },
    subscribe: function (cb) {
      app.listeners.push(cb);
      return function () { app.listeners = app.listeners.filter(function (l) { return l !== cb; }); };
    },
  };
  function setApp(v) {
    app.value = v;
    app.listeners.slice().forEach(function (l) { l(v); });
  }
  var tokens = 0;
  var c = await m.connect(host.url, {
    name: 'hermes-app',
    WebSocket: host.WebSocket,
    reconnectBackoff: { base: 20, max: 50 },
    appState: appState,
    getToken: function () { tokens++; return 'app-token'; },
  });
  c.on('status', function (s) { out.statuses.push(s.type); });
  out.connected = c.isConnected;
  c.subscribe('app.>', {
    callback: function (msg) { out.events.push({ topic: msg.topic, text: msg.string(), headers: msg.headers || null }); },
  });
  var data = c.subscribe('data.*', {
    callback: function (msg) { out.events.push({ topic: msg.topic, value: m.MsgpackCodec.decode(msg.data) }); },
  });
  await c.flush();
  await host.step('publish');
  await until(function () { return out.events.length === 3; }, 'three events');

  c.publish('phone.text', 'from the app');
  c.publish('phone.msgpack', { from: 'hermes', n: [1, 2.5, -3], t: true }, { codec: m.MsgpackCodec, headers: { 'x-app': 'ünï' } });

  var reply = await c.request('svc.echo', 'ping', { timeout: 3000 });
  out.reply = reply.string();
  try {
    await c.request('nobody.home', 'anyone?', { timeout: 3000 });
    out.errors.push('no error');
  } catch (e) {
    out.errors.push(e.code);
  }
  try {
    c.publish('bad..topic', 'x');
  } catch (e) {
    out.errors.push(e.code);
  }
  data.unsubscribe();
  await c.flush();
  await host.step('after-unsubscribe');
  await until(function () { return out.events.length === 4; }, 'the event after unsubscribing');

  // Background: the connection goes (GOODBYE), a publish waits in the outbox;
  // foreground: a new connection with a fresh token, resubscribed, outbox sent.
  setApp('background');
  await until(function () { return !c.isConnected; }, 'disconnected in the background');
  out.suspended = c.isSuspended;
  c.publish('phone.queued', 'sent from the outbox');
  out.outboxWhileAway = c.outboxCount;
  setApp('active');
  await until(function () { return c.isConnected; }, 'reconnected in the foreground');
  await c.flush();
  await host.step('after-resume');
  await until(function () { return out.events.length === 5; }, 'an event after resuming');
  out.tokens = tokens;
  await c.close();
  out.listenersLeft = app.listeners.length;
  out.closed = c.isClosed;
  return out;
};
