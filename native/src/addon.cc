// @meshbus/native: the hot byte work of the meshbus codec (frame scanning,
// CRC32C, FNV-1a topic hash, header writing) as a Node-API addon.
//
// Every function here computes exactly what its TypeScript twin in
// proto/src computes (bit for bit, including scan errors). Rules:
//   * Arguments are validated before any byte is touched: a bad argument
//     throws TypeError (wrong kind) or RangeError (out of range), it never
//     leads to a read or write outside the caller's typed array.
//   * Only memory owned by JS is written (the caller's Uint8Array /
//     Uint32Array); nothing is allocated, nothing native is handed to JS.
//   * One boundary crossing per call: scan walks a whole chunk.
//
// The hot entry points are plain Node-API callbacks (no CallbackInfo
// allocation for more than six arguments); node-addon-api is used for the
// module setup.

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "crc32c.h"

namespace meshbus_allocator {
void Register(Napi::Env env, Napi::Object exports);  // allocator.cc
}

namespace {

// ---------------------------------------------------------------- constants
// Mirrors proto/src/constants.ts and proto/src/errors.ts.

constexpr size_t kFixedSize = 64;    // prefix + header
constexpr size_t kHeaderSize = 60;   // header after the 4-byte prefix
constexpr uint32_t kMagic = 0x4d42;
constexpr uint8_t kVersion = 1;
constexpr uint32_t kKnownFlags = 0x3;

constexpr size_t kOffLength = 0, kOffMagic = 4, kOffVersion = 6, kOffType = 7, kOffFlags = 8,
                 kOffHops = 10, kOffMaxHops = 11, kOffTopicHash = 12, kOffOrigin = 16, kOffSeq = 24,
                 kOffTimestamp = 32, kOffCorrelation = 40, kOffTopicLen = 44, kOffExtLen = 46,
                 kOffPayloadLen = 48, kOffSid = 52, kOffReserved = 56, kOffCrc = 60;

constexpr uint32_t kErrBadMagic = 1001;
constexpr uint32_t kErrVersion = 1002;
constexpr uint32_t kErrType = 1003;
constexpr uint32_t kErrReserved = 1004;
constexpr uint32_t kErrLength = 1005;
constexpr uint32_t kErrTooLarge = 1006;
constexpr uint32_t kErrBadCrc = 1007;

constexpr size_t kScanMeta = 4;
constexpr size_t kScanSlots = 4;

struct KnownTypes {
  bool t[256] = {};
  constexpr KnownTypes() {
    const uint8_t types[] = {0x01, 0x02, 0x03, 0x10, 0x11, 0x20, 0x21, 0x30,
                             0x31, 0x40, 0x41, 0x50, 0x60, 0x61, 0x62, 0x70};
    for (uint8_t x : types) t[x] = true;
  }
};
constexpr KnownTypes kKnownTypes;

inline uint32_t ReadU16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
inline uint32_t ReadU32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline void WriteU16(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void WriteU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
using meshbus_crc::Crc32c;
using meshbus_crc::g_crc_header;
using meshbus_crc::g_crc_impl;
using meshbus_crc::InitCrc;

// ---------------------------------------------------------------- scanning
// Same checks in the same order as proto/src/frame-scanner.ts checkHeader.

inline uint32_t CheckHeader(const uint8_t* p, double max_frame_length) {
  if (ReadU16(p + kOffMagic) != kMagic) return kErrBadMagic;
  if (g_crc_header(p) != ReadU32(p + kOffCrc)) return kErrBadCrc;
  if (p[kOffVersion] != kVersion) return kErrVersion;
  if (!kKnownTypes.t[p[kOffType]]) return kErrType;
  if ((ReadU16(p + kOffFlags) & ~kKnownFlags) != 0) return kErrReserved;
  for (size_t i = kOffReserved; i < kOffCrc; i++)
    if (p[i] != 0) return kErrReserved;
  const uint64_t length = ReadU32(p + kOffLength);
  const uint64_t parts = kHeaderSize + ReadU16(p + kOffTopicLen) + ReadU16(p + kOffExtLen) +
                         uint64_t(ReadU32(p + kOffPayloadLen));
  if (length != parts) return kErrLength;
  if (double(length) > max_frame_length) return kErrTooLarge;
  return 0;
}

// SCAN_REPEAT (proto frame-scanner.ts): the header but for lengths and CRC (kRepeatUnstamped: and for sequence and
// timestamp), and the topic, equal the previous frame's. Both frames are whole and checked (length == 60 + topic +
// ext + payload), so both topics lie inside them; the header compare, topic length included, runs first.
constexpr uint32_t kScanRepeat = 1u << 24;
constexpr uint32_t kRepeatHeader = 1;     // proto Repeats.HEADER
constexpr uint32_t kRepeatUnstamped = 2;  // proto Repeats.UNSTAMPED
inline bool SameHead(const uint8_t* a, const uint8_t* b, uint32_t repeats) {
  const bool head =
      repeats == kRepeatUnstamped
          ? std::memcmp(a + kOffMagic, b + kOffMagic, kOffSeq - kOffMagic) == 0 &&
                std::memcmp(a + kOffCorrelation, b + kOffCorrelation, kOffPayloadLen - kOffCorrelation) == 0
          : std::memcmp(a + kOffMagic, b + kOffMagic, kOffPayloadLen - kOffMagic) == 0;
  return head && std::memcmp(a + kOffSid, b + kOffSid, kOffCrc - kOffSid) == 0 &&
         std::memcmp(a + kFixedSize, b + kFixedSize, ReadU16(a + kOffTopicLen)) == 0;
}

// buf[start, end) is within the caller's array (checked by the caller);
// out has room for kScanMeta + cap * kScanSlots words.
uint32_t Scan(const uint8_t* buf, uint64_t start, uint64_t end, double max_frame_length,
              uint32_t* out, uint64_t cap, uint32_t repeats) {
  uint64_t count = 0;
  const uint8_t* prev = nullptr;
  uint64_t p = start;
  uint32_t err = 0;
  uint64_t pending = 0;
  while (count < cap) {
    const uint64_t avail = end - p;  // p <= end always holds
    if (avail < 6) break;
    const uint8_t* f = buf + p;
    if (ReadU16(f + kOffMagic) != kMagic) {
      err = kErrBadMagic;
      break;
    }
    if (avail < kFixedSize) break;
    err = CheckHeader(f, max_frame_length);
    if (err != 0) {
      if (err == kErrTooLarge) pending = ReadU32(f);
      break;
    }
    const uint64_t size = uint64_t(ReadU32(f)) + 4;
    if (size > avail) {
      pending = size - 4;
      break;
    }
    uint32_t* o = out + kScanMeta + count * kScanSlots;
    o[0] = uint32_t(p);
    o[1] = uint32_t(size);
    o[2] = uint32_t(f[kOffType]) | (ReadU16(f + kOffFlags) << 8) |
           (repeats != 0 && prev != nullptr && SameHead(f, prev, repeats) ? kScanRepeat : 0);
    o[3] = ReadU32(f + kOffTopicHash);
    count++;
    prev = f;
    p += size;
  }
  out[0] = uint32_t(count);
  out[1] = uint32_t(p);
  out[2] = err;
  out[3] = uint32_t(pending);
  return uint32_t(count);
}

// -------------------------------------------------------- argument checking

// JS ToUint32 of a double: truncate, then modulo 2^32 (NaN/Infinity -> 0).
inline uint32_t ToUint32(double v) {
  if (!std::isfinite(v)) return 0;
  double t = std::trunc(v);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return uint32_t(m);
}

bool ThrowType(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}
bool ThrowRange(napi_env env, const char* msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return false;
}

// Each Node-API call costs a few nanoseconds and every crossing pays for
// them, so the happy path makes one call per argument: the type checks
// happen only when that call fails.

// A Uint8Array (Buffer included); data may be null when length is 0.
bool GetBytes(napi_env env, napi_value v, const char* what, uint8_t** data, size_t* len) {
  napi_typedarray_type type;
  void* ptr = nullptr;
  size_t length = 0;
  // napi_get_typedarray_info fails with napi_invalid_arg for anything else.
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array)
    return ThrowType(env, what);
  *data = static_cast<uint8_t*>(ptr);
  *len = ptr == nullptr ? 0 : length;
  return true;
}

bool GetNumber(napi_env env, napi_value v, const char* what, double* out) {
  // Fails with napi_number_expected for non-numbers.
  return napi_get_value_double(env, v, out) == napi_ok || ThrowType(env, what);
}

bool IsUndefined(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_undefined;
}

// An integer offset in [0, limit]; `undefined` takes `dflt` when allowed.
bool GetOffset(napi_env env, napi_value v, const char* what, size_t limit, bool allow_undefined,
               size_t dflt, size_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    if (allow_undefined && IsUndefined(env, v)) {
      *out = dflt;
      return true;
    }
    return ThrowType(env, what);
  }
  if (!(d >= 0) || d > double(limit) || d != std::trunc(d)) return ThrowRange(env, what);
  *out = size_t(d);
  return true;
}

inline napi_value Uint32(napi_env env, uint32_t v) {
  napi_value r;
  napi_create_uint32(env, v, &r);
  return r;
}

// ------------------------------------------------------------ entry points

// scan(buf, start, end, maxFrameLength, out: Uint32Array, repeats: boolean | 0 | 1 | 2 = false) -> count
napi_value JsScan(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 5) {
    ThrowType(env, "scan(buf, start, end, maxFrameLength, out) needs five arguments");
    return nullptr;
  }
  uint8_t* buf;
  size_t len;
  if (!GetBytes(env, argv[0], "scan: buf must be a Uint8Array", &buf, &len)) return nullptr;
  size_t end, start;
  if (!GetOffset(env, argv[2], "scan: end must be an integer in [0, buf.length]", len, false, 0,
                 &end))
    return nullptr;
  if (!GetOffset(env, argv[1], "scan: start must be an integer in [0, end]", end, false, 0,
                 &start))
    return nullptr;
  double max_frame;
  if (!GetNumber(env, argv[3], "scan: maxFrameLength must be a number", &max_frame))
    return nullptr;
  if (std::isnan(max_frame)) {
    ThrowRange(env, "scan: maxFrameLength must not be NaN");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t out_len = 0;
  void* out_ptr = nullptr;
  if (napi_get_typedarray_info(env, argv[4], &type, &out_len, &out_ptr, nullptr, nullptr) !=
          napi_ok ||
      type != napi_uint32_array) {
    ThrowType(env, "scan: out must be a Uint32Array");
    return nullptr;
  }
  if (out_ptr == nullptr || out_len < kScanMeta) {
    ThrowRange(env, "scan: out must have at least 4 elements");
    return nullptr;
  }
  // `repeats`: a number is proto's Repeats (0, 1 or 2); anything else as JavaScript's truthiness (true: HEADER),
  // like the TypeScript scanner's `if (repeats)`.
  uint32_t repeats = 0;
  if (argc > 5) {
    napi_valuetype vt;
    if (napi_typeof(env, argv[5], &vt) != napi_ok) return nullptr;
    if (vt == napi_number) {
      double d;
      if (napi_get_value_double(env, argv[5], &d) != napi_ok) return nullptr;
      if (!(d == 0 || d == kRepeatHeader || d == kRepeatUnstamped)) {
        ThrowRange(env, "scan: repeats must be 0, 1 or 2 (Repeats), or a boolean");
        return nullptr;
      }
      repeats = uint32_t(d);
    } else {
      bool b = false;
      napi_value flag;
      if (napi_coerce_to_bool(env, argv[5], &flag) != napi_ok || napi_get_value_bool(env, flag, &b) != napi_ok)
        return nullptr;
      repeats = b ? kRepeatHeader : 0;
    }
  }
  const uint64_t cap = (out_len - kScanMeta) / kScanSlots;
  return Uint32(env, Scan(buf, start, end, max_frame, static_cast<uint32_t*>(out_ptr), cap, repeats));
}

// crc32c(buf, start = 0, end = buf.length, crc = 0) -> u32
napi_value JsCrc32c(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 1) {
    ThrowType(env, "crc32c: buf must be a Uint8Array");
    return nullptr;
  }
  uint8_t* buf;
  size_t len;
  if (!GetBytes(env, argv[0], "crc32c: buf must be a Uint8Array", &buf, &len)) return nullptr;
  size_t end = len, start = 0;
  if (argc > 2 && !GetOffset(env, argv[2], "crc32c: end must be an integer in [0, buf.length]",
                             len, true, len, &end))
    return nullptr;
  if (argc > 1 && !GetOffset(env, argv[1], "crc32c: start must be an integer in [0, end]", end,
                             true, 0, &start))
    return nullptr;
  uint32_t crc = 0;
  if (argc > 3) {
    double d;
    if (napi_get_value_double(env, argv[3], &d) == napi_ok)
      crc = ToUint32(d);  // the JS version applies ~ (ToInt32): same bits
    else if (!IsUndefined(env, argv[3]))
      return ThrowType(env, "crc32c: crc must be a number"), nullptr;
  }
  return Uint32(env, Crc32c(buf + start, end - start, crc));
}

// topicHash(bytes, start = 0, end = bytes.length) -> u32 (FNV-1a 32)
napi_value JsTopicHash(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 1) {
    ThrowType(env, "topicHash: bytes must be a Uint8Array");
    return nullptr;
  }
  uint8_t* buf;
  size_t len;
  if (!GetBytes(env, argv[0], "topicHash: bytes must be a Uint8Array", &buf, &len)) return nullptr;
  size_t end = len, start = 0;
  if (argc > 2 && !GetOffset(env, argv[2], "topicHash: end must be an integer in [0, bytes.length]",
                             len, true, len, &end))
    return nullptr;
  if (argc > 1 && !GetOffset(env, argv[1], "topicHash: start must be an integer in [0, end]", end,
                             true, 0, &start))
    return nullptr;
  uint32_t h = 0x811c9dc5u;
  for (size_t i = start; i < end; i++) h = (h ^ buf[i]) * 0x01000193u;
  return Uint32(env, h);
}

// writeHeader(dst, off, type, flags, hops, maxHops, topicHash, origin|undefined,
//             seq, timestamp, correlation, topicLen, extLen, payloadLen, sid)
// Positional numbers (the TypeScript wrapper applies the HeaderFields
// defaults); integer conversions follow the JS typed-array stores exactly.
napi_value JsWriteHeader(napi_env env, napi_callback_info info) {
  size_t argc = 15;
  napi_value argv[15];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc < 15) {
    ThrowType(env, "writeHeader needs 15 arguments (use the TypeScript wrapper)");
    return nullptr;
  }
  uint8_t* dst;
  size_t len;
  if (!GetBytes(env, argv[0], "writeHeader: dst must be a Uint8Array", &dst, &len)) return nullptr;
  if (len < kFixedSize) {
    ThrowRange(env, "writeHeader: dst is shorter than 64 bytes");
    return nullptr;
  }
  size_t off;
  if (!GetOffset(env, argv[1], "writeHeader: off must be an integer in [0, dst.length - 64]",
                 len - kFixedSize, false, 0, &off))
    return nullptr;
  double v[15];
  for (int i = 2; i < 15; i++) {
    if (i == 7) continue;
    if (!GetNumber(env, argv[i], "writeHeader: header fields must be numbers", &v[i]))
      return nullptr;
  }
  const uint8_t* origin = nullptr;
  {
    napi_typedarray_type ot;
    void* optr = nullptr;
    size_t olen = 0;
    if (napi_get_typedarray_info(env, argv[7], &ot, &olen, &optr, nullptr, nullptr) == napi_ok) {
      if (ot != napi_uint8_array) {
        ThrowType(env, "writeHeader: origin must be a Uint8Array");
        return nullptr;
      }
      if (optr == nullptr || olen != 8) {
        ThrowRange(env, "writeHeader: origin must be 8 bytes");
        return nullptr;
      }
      origin = static_cast<const uint8_t*>(optr);
    } else if (!IsUndefined(env, argv[7])) {
      ThrowType(env, "writeHeader: origin must be a Uint8Array");
      return nullptr;
    }
  }
  uint8_t* h = dst + off;
  const uint32_t topic_len = ToUint32(v[11]), ext_len = ToUint32(v[12]),
                 payload_len = ToUint32(v[13]);
  // JS adds the lengths as doubles, then stores ToUint32 of the sum.
  WriteU32(h + kOffLength, ToUint32(double(kHeaderSize) + v[11] + v[12] + v[13]));
  WriteU16(h + kOffMagic, kMagic);
  h[kOffVersion] = kVersion;
  h[kOffType] = uint8_t(ToUint32(v[2]));
  WriteU16(h + kOffFlags, ToUint32(v[3]));
  h[kOffHops] = uint8_t(ToUint32(v[4]));
  h[kOffMaxHops] = uint8_t(ToUint32(v[5]));
  WriteU32(h + kOffTopicHash, ToUint32(v[6]));
  if (origin)
    std::memcpy(h + kOffOrigin, origin, 8);
  else
    std::memset(h + kOffOrigin, 0, 8);
  WriteU32(h + kOffSeq, ToUint32(std::floor(v[8] / 4294967296.0)));
  WriteU32(h + kOffSeq + 4, ToUint32(v[8]));
  WriteU32(h + kOffTimestamp, ToUint32(std::floor(v[9] / 4294967296.0)));
  WriteU32(h + kOffTimestamp + 4, ToUint32(v[9]));
  WriteU32(h + kOffCorrelation, ToUint32(v[10]));
  WriteU16(h + kOffTopicLen, topic_len);
  WriteU16(h + kOffExtLen, ext_len);
  WriteU32(h + kOffPayloadLen, payload_len);
  WriteU32(h + kOffSid, ToUint32(v[14]));
  std::memset(h + kOffReserved, 0, kOffCrc - kOffReserved);
  WriteU32(h + kOffCrc, g_crc_header(h));
  return nullptr;
}

// The layout this addon was compiled with; index.ts compares it with
// @meshbus/proto and refuses the addon when they disagree (a stale build).
Napi::Object Layout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const struct {
    const char* name;
    size_t value;
  } off[] = {{"LENGTH", kOffLength},       {"MAGIC", kOffMagic},           {"VERSION", kOffVersion},
             {"TYPE", kOffType},           {"FLAGS", kOffFlags},           {"HOPS", kOffHops},
             {"MAX_HOPS", kOffMaxHops},    {"TOPIC_HASH", kOffTopicHash},  {"ORIGIN", kOffOrigin},
             {"SEQ", kOffSeq},             {"TIMESTAMP", kOffTimestamp},   {"CORRELATION", kOffCorrelation},
             {"TOPIC_LEN", kOffTopicLen},  {"EXT_LEN", kOffExtLen},        {"PAYLOAD_LEN", kOffPayloadLen},
             {"SID", kOffSid},             {"RESERVED", kOffReserved},     {"CRC", kOffCrc}};
  Napi::Object offsets = Napi::Object::New(env);
  for (const auto& e : off) offsets.Set(e.name, Napi::Number::New(env, double(e.value)));
  o.Set("OFF", offsets);
  o.Set("FIXED_SIZE", Napi::Number::New(env, double(kFixedSize)));
  o.Set("MAGIC", Napi::Number::New(env, kMagic));
  o.Set("VERSION", Napi::Number::New(env, kVersion));
  o.Set("KNOWN_FLAGS", Napi::Number::New(env, kKnownFlags));
  // The scan contract's repeat bit: an addon built before it ignores `repeats` (a node would lose its fast path unseen).
  o.Set("SCAN_REPEAT", Napi::Number::New(env, kScanRepeat));
  // And its compares (an addon built before REPEAT_UNSTAMPED would compare a peer's sequences and mark nothing).
  Napi::Object repeats = Napi::Object::New(env);
  repeats.Set("NONE", Napi::Number::New(env, 0));
  repeats.Set("HEADER", Napi::Number::New(env, kRepeatHeader));
  repeats.Set("UNSTAMPED", Napi::Number::New(env, kRepeatUnstamped));
  o.Set("REPEATS", repeats);
  Napi::Array types = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t t = 0; t < 256; t++)
    if (kKnownTypes.t[t]) types.Set(n++, Napi::Number::New(env, t));
  o.Set("TYPES", types);
  Napi::Object errors = Napi::Object::New(env);
  errors.Set("MB_ERR_BAD_MAGIC", Napi::Number::New(env, kErrBadMagic));
  errors.Set("MB_ERR_UNSUPPORTED_VERSION", Napi::Number::New(env, kErrVersion));
  errors.Set("MB_ERR_UNKNOWN_TYPE", Napi::Number::New(env, kErrType));
  errors.Set("MB_ERR_RESERVED_BITS", Napi::Number::New(env, kErrReserved));
  errors.Set("MB_ERR_LENGTH_MISMATCH", Napi::Number::New(env, kErrLength));
  errors.Set("MB_ERR_FRAME_TOO_LARGE", Napi::Number::New(env, kErrTooLarge));
  errors.Set("MB_ERR_BAD_CRC", Napi::Number::New(env, kErrBadCrc));
  o.Set("ERRORS", errors);
  return o;
}

void SetFn(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitCrc();
  meshbus_allocator::Register(env, exports);
  SetFn(env, exports, "scan", JsScan);
  SetFn(env, exports, "crc32c", JsCrc32c);
  SetFn(env, exports, "topicHash", JsTopicHash);
  SetFn(env, exports, "writeHeader", JsWriteHeader);
  exports.Set("crcImpl", Napi::String::New(env, g_crc_impl));
  exports.Set("layout", Layout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(meshbus_native, Init)
