// Seeded randomness for the session replay, run before the bundle in both engines
// (Node's vm for the recording, hermes for the replay): the SDK draws reply-topic
// tokens (crypto.getRandomValues) and backoff jitter (Math.random) from it, so
// both runs make the same choices and the recorded server frames fit the replay.
// `MESHBUS_SEED` is defined by the test before this runs.
(function (root) {
  var s = MESHBUS_SEED >>> 0;
  function next() {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    var t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  Math.random = next;
  root.crypto = {
    getRandomValues: function (a) {
      for (var i = 0; i < a.length; i++) a[i] = Math.floor(next() * 256);
      return a;
    },
  };
})(globalThis);
