// The hermes side of the session replay, run after prng.js, the mobile bundle
// and scenario.js. The test defines MESHBUS_TRANSCRIPT before it: per
// WebSocket connection the app opened in the recording, the server's messages
// (hex) and close, each with `after`: how many frames the client had sent on
// that connection when it arrived.
//
// The hermes CLI has no sockets and its setTimeout ignores delays (timers run
// in the order they were set), so this file gives the app:
// - ReplayWebSocket: opens, then hands the app each recorded server message
//   once the app has sent as many frames as it had when that message arrived
//   in the recording; records every frame the app sends.
// - a timer queue in virtual time (setTimeout/setInterval and Date.now): the
//   earliest due timer runs next, one per host task, so the engine's
//   microtasks run between timers as in an app.
// Prints one line: `RESULT <json>` ({ result, frames, virtualMs }) or
// `FAILED <json>`.
(function (root) {
  var hostTimeout = setTimeout;
  var realNow = Date.now;
  var start = realNow();
  var now = 0;
  var seq = 0;
  var timers = [];
  var done = false;
  var steps = 0;

  function schedule(fn, ms, args, every) {
    var t = { id: ++seq, due: now + Math.max(0, +ms || 0), fn: fn, args: args, every: every };
    timers.push(t);
    return t.id;
  }
  function cancel(id) {
    for (var i = 0; i < timers.length; i++) if (timers[i].id === id) { timers.splice(i, 1); return; }
  }
  root.setTimeout = function (fn, ms) { return schedule(fn, ms, Array.prototype.slice.call(arguments, 2), 0); };
  root.setInterval = function (fn, ms) { return schedule(fn, ms, Array.prototype.slice.call(arguments, 2), Math.max(1, +ms || 0)); };
  root.clearTimeout = cancel;
  root.clearInterval = cancel;
  Date.now = function () { return start + now; };

  function loop() {
    if (done) return;
    if (++steps > 200000 || now > 120000) return fail(new Error('the session did not end (virtual time ' + now + ' ms, ' + steps + ' timer runs)'));
    if (timers.length === 0) return fail(new Error('nothing left to run and the session did not end'));
    var k = 0;
    for (var i = 1; i < timers.length; i++) if (timers[i].due < timers[k].due || (timers[i].due === timers[k].due && timers[i].id < timers[k].id)) k = i;
    var t = timers[k];
    if (t.every) {
      t.due += t.every;
      t.id = ++seq;
    } else {
      timers.splice(k, 1);
    }
    now = Math.max(now, t.due - (t.every || 0));
    try {
      t.fn.apply(null, t.args);
    } catch (e) {
      return fail(e);
    }
    hostTimeout(loop, 0);
  }

  function hex(u8) {
    var s = '';
    for (var i = 0; i < u8.length; i++) s += (u8[i] < 16 ? '0' : '') + u8[i].toString(16);
    return s;
  }
  function bytes(h) {
    var out = new Uint8Array(h.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
    return out;
  }

  var connections = MESHBUS_TRANSCRIPT;
  var opened = 0;
  var frames = [];

  function ReplayWebSocket(url) {
    var self = this;
    this.url = url;
    this.binaryType = 'blob';
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.onclose = null;
    this.conn = opened;
    this.script = connections[opened++];
    this.sent = 0;
    this.next = 0;
    if (!this.script) {
      setTimeout(function () { self.readyState = 3; if (self.onclose) self.onclose({ code: 1006, reason: 'no such connection in the recording' }); }, 0);
      return;
    }
    setTimeout(function () {
      self.readyState = 1;
      if (self.onopen) self.onopen({});
      self.deliver();
    }, 0);
  }
  ReplayWebSocket.CONNECTING = 0;
  ReplayWebSocket.OPEN = 1;
  ReplayWebSocket.CLOSING = 2;
  ReplayWebSocket.CLOSED = 3;
  ReplayWebSocket.prototype.send = function (data) {
    if (this.readyState !== 1) throw new Error('WebSocket is not open');
    var u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
    // One message may carry several frames: u32 big-endian length, then that many bytes.
    for (var pos = 0; pos + 4 <= u8.length;) {
      var len = ((u8[pos] << 24) | (u8[pos + 1] << 16) | (u8[pos + 2] << 8) | u8[pos + 3]) >>> 0;
      frames.push({ conn: this.conn, hex: hex(u8.subarray(pos, pos + 4 + len)) });
      pos += 4 + len;
      this.sent++;
    }
    var self = this;
    setTimeout(function () { self.deliver(); }, 0);
  };
  ReplayWebSocket.prototype.deliver = function () {
    var s = this.script.server;
    while (this.readyState === 1 && this.next < s.length && s[this.next].after <= this.sent) {
      var m = s[this.next++];
      if (m.close !== undefined) {
        this.readyState = 3;
        if (this.onclose) this.onclose({ code: m.close, reason: '' });
        return;
      }
      var b = bytes(m.hex);
      if (this.onmessage) this.onmessage({ data: this.binaryType === 'arraybuffer' ? b.buffer : b });
    }
  };
  ReplayWebSocket.prototype.close = function (code, reason) {
    if (this.readyState >= 2) return;
    var self = this;
    this.readyState = 2;
    setTimeout(function () {
      self.readyState = 3;
      if (self.onclose) self.onclose({ code: code || 1000, reason: reason || '' });
    }, 0);
  };

  function fail(e) {
    if (done) return;
    done = true;
    print('FAILED ' + JSON.stringify({ error: String(e && e.message ? e.message : e), stack: String((e && e.stack) || ''), frames: frames, virtualMs: now }));
  }

  var host = {
    url: MESHBUS_URL,
    WebSocket: ReplayWebSocket,
    step: function () { return Promise.resolve(); },
  };
  schedule(function () {
    meshbusScenario(root.meshbusMobile, host).then(
      function (result) {
        if (done) return;
        done = true;
        print('RESULT ' + JSON.stringify({ result: result, frames: frames, virtualMs: now }));
      },
      fail,
    );
  }, 0, [], 0);
  hostTimeout(loop, 0);
})(globalThis);
