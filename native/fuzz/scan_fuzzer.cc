// libFuzzer harness for the native frame scanner (native/src/addon.cc Scan).
//
// Build and run: native/fuzz/run.sh [runs] (clang with
// -fsanitize=fuzzer,address,undefined). The addon source is included whole;
// its Node-API entry points are never called here, so their symbols are
// left unresolved at link time.
//
// Input: byte 0 picks the decoder limit (bits 0-2) and, with bit 3, reseals
// the CRC of every header the stream's length fields lead to (so mutations
// get past the CRC check to the later ones); byte 1 the out capacity (0..7
// frames), byte 2 the start offset; the rest is the stream, copied into an
// exactly-sized heap buffer so ASan flags any read past it. Checks the scan
// contract: count <= cap, frames in order, contiguous, inside [start, end),
// each at least 64 bytes, stop position after the last frame, error codes
// from the known set, out words beyond the reported frames untouched.
#include "../src/addon.cc"

#include <cstdlib>
#include <vector>

namespace {
void Check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  InitCrc();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static const double kLimits[] = {60, 64, 100, 200, 1000, 4096, 1179706, 4294967295.0};
  const double max_frame = kLimits[data[0] & 7];
  const uint64_t cap = data[1] & 7;
  const size_t n = size - 3;
  uint8_t* buf = static_cast<uint8_t*>(std::malloc(n ? n : 1));
  std::memcpy(buf, data + 3, n);
  const uint64_t start = n ? data[2] % (n + 1) : 0;
  for (uint64_t q = start; q + kFixedSize <= n && (data[0] & 8);) {
    // The hardware and table CRC engines must agree on every header.
    Check(g_crc_header(buf + q) == CrcHeaderTable(buf + q));
    WriteU32(buf + q + kOffCrc, g_crc_header(buf + q));
    const uint64_t len = uint64_t(ReadU32(buf + q)) + 4;
    q += len < kFixedSize ? kFixedSize : len;
  }
  std::vector<uint32_t> out(kScanMeta + cap * kScanSlots + 4, 0xdeadbeef);
  const uint32_t count = Scan(buf, start, n, max_frame, out.data(), cap);
  Check(count == out[0] && count <= cap);
  uint64_t p = start;
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t* o = out.data() + kScanMeta + i * kScanSlots;
    Check(o[0] == p && o[1] >= kFixedSize && p + o[1] <= n);
    p += o[1];
  }
  Check(out[1] == p && p <= n);
  const uint32_t err = out[2];
  Check(err == 0 || (err >= 1001 && err <= 1007));
  for (size_t i = kScanMeta + cap * kScanSlots; i < out.size(); i++) Check(out[i] == 0xdeadbeef);
  for (size_t i = kScanMeta + count * kScanSlots; i < kScanMeta + cap * kScanSlots; i++) Check(out[i] == 0xdeadbeef);
  std::free(buf);
  return 0;
}
