// CRC32C for the addon (declared in crc32c.h): split from addon.cc, which
// keeps the frame scanning, header writing and the module's setup.

#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define MB_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <nmmintrin.h>
#define MB_TARGET_SSE42
#else
#include <cpuid.h>
#include <nmmintrin.h>
#define MB_TARGET_SSE42 __attribute__((target("sse4.2")))
#endif
#elif defined(__aarch64__) || defined(_M_ARM64)
#define MB_ARM64 1
#if defined(__ARM_FEATURE_CRC32)
// The compiler already targets a CPU with the CRC extension (Apple silicon,
// -march=armv8.1-a and later): no attribute and no runtime check needed.
#include <arm_acle.h>
#define MB_TARGET_CRC
#define MB_ARM_CRC_ALWAYS 1
#elif defined(__GNUC__) && !defined(__clang__)
#include <arm_acle.h>
#define MB_TARGET_CRC __attribute__((target("+crc")))
#elif defined(__clang__)
#include <arm_acle.h>
#define MB_TARGET_CRC __attribute__((target("crc")))
#else
#undef MB_ARM64
#endif
#if defined(MB_ARM64) && defined(__linux__) && !defined(MB_ARM_CRC_ALWAYS)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif
#endif

namespace meshbus_crc {
namespace {

inline uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}
inline uint32_t LoadLE32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}


constexpr uint32_t kPoly = 0x82f63b78;
uint32_t g_table[8][256];

void InitTable() {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    g_table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = g_table[0][n];
    for (int s = 1; s < 8; s++) {
      c = g_table[0][c & 0xff] ^ (c >> 8);
      g_table[s][n] = c;
    }
  }
}

// Slicing-by-8 table version: the fallback on CPUs without a CRC32C
// instruction (same algorithm as proto/src/crc32c.ts).
uint32_t CrcTable(uint32_t c, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t a = c ^ LoadLE32(p);
    c = g_table[7][a & 0xff] ^ g_table[6][(a >> 8) & 0xff] ^ g_table[5][(a >> 16) & 0xff] ^
        g_table[4][a >> 24] ^ g_table[3][p[4]] ^ g_table[2][p[5]] ^ g_table[1][p[6]] ^
        g_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = g_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

// Shift operators for combining interleaved hardware streams (after Mark
// Adler's crc32c.c): zeros[k][b] applies "append `len` zero bytes" to a CRC,
// one table per byte of the register.
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;
uint32_t g_long[4][256];
uint32_t g_short[4][256];

uint32_t Gf2MatrixTimes(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  while (vec) {
    if (vec & 1) sum ^= *mat;
    vec >>= 1;
    mat++;
  }
  return sum;
}
void Gf2MatrixSquare(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; n++) square[n] = Gf2MatrixTimes(mat, mat[n]);
}
// Operator for `len` zero bytes (len must be a power of two >= 1 here).
void ZerosOp(uint32_t* even, size_t len) {
  uint32_t odd[32];
  odd[0] = kPoly;  // one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  Gf2MatrixSquare(even, odd);  // 2 bits
  Gf2MatrixSquare(odd, even);  // 4 bits
  // Each pass squares twice: first to 8 bits (1 byte), then doubling.
  do {
    Gf2MatrixSquare(even, odd);
    len >>= 1;
    if (len == 0) return;
    Gf2MatrixSquare(odd, even);
    len >>= 1;
  } while (len);
  for (int n = 0; n < 32; n++) even[n] = odd[n];
}
void Zeros(uint32_t zeros[][256], size_t len) {
  uint32_t op[32];
  ZerosOp(op, len);
  for (uint32_t n = 0; n < 256; n++) {
    zeros[0][n] = Gf2MatrixTimes(op, n);
    zeros[1][n] = Gf2MatrixTimes(op, n << 8);
    zeros[2][n] = Gf2MatrixTimes(op, n << 16);
    zeros[3][n] = Gf2MatrixTimes(op, n << 24);
  }
}
inline uint32_t Shift(uint32_t zeros[][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
         zeros[3][crc >> 24];
}

#if defined(MB_X86)
bool CpuHasSse42() {
#if defined(_MSC_VER) && !defined(__clang__)
  int info[4];
  __cpuid(info, 1);
  return (info[2] & (1 << 20)) != 0;
#else
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
#endif
}

// Three interleaved streams hide the 3-cycle latency of crc32; the partial
// results are combined with the shift tables.
MB_TARGET_SSE42 uint32_t CrcHw(uint32_t c, const uint8_t* p, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
  // Align to 8 bytes so the word loads below do not split cache lines.
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = _mm_crc32_u8(c, *p++);
    n--;
  }
  uint64_t c0 = c;
  while (n >= kLong * 3) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + kLong;
    do {
      c0 = _mm_crc32_u64(c0, LoadLE64(p));
      c1 = _mm_crc32_u64(c1, LoadLE64(p + kLong));
      c2 = _mm_crc32_u64(c2, LoadLE64(p + 2 * kLong));
      p += 8;
    } while (p < end);
    c0 = Shift(g_long, uint32_t(c0)) ^ uint32_t(c1);
    c0 = Shift(g_long, uint32_t(c0)) ^ uint32_t(c2);
    p += 2 * kLong;
    n -= 3 * kLong;
  }
  while (n >= kShort * 3) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + kShort;
    do {
      c0 = _mm_crc32_u64(c0, LoadLE64(p));
      c1 = _mm_crc32_u64(c1, LoadLE64(p + kShort));
      c2 = _mm_crc32_u64(c2, LoadLE64(p + 2 * kShort));
      p += 8;
    } while (p < end);
    c0 = Shift(g_short, uint32_t(c0)) ^ uint32_t(c1);
    c0 = Shift(g_short, uint32_t(c0)) ^ uint32_t(c2);
    p += 2 * kShort;
    n -= 3 * kShort;
  }
  while (n >= 8) {
    c0 = _mm_crc32_u64(c0, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  c = uint32_t(c0);
#else
  while (n >= 4) {
    c = _mm_crc32_u32(c, LoadLE32(p));
    p += 4;
    n -= 4;
  }
#endif
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}

// The 60 covered header bytes: seven words and one u32, unrolled.
MB_TARGET_SSE42 uint32_t CrcHeaderHw(const uint8_t* p) {
#if defined(__x86_64__) || defined(_M_X64)
  uint64_t c = 0xffffffffu;
  for (int i = 0; i < 7; i++) c = _mm_crc32_u64(c, LoadLE64(p + 8 * i));
  uint32_t r = _mm_crc32_u32(uint32_t(c), LoadLE32(p + 56));
  return ~r;
#else
  return ~CrcHw(0xffffffffu, p, kCrcCovered);
#endif
}
#endif  // MB_X86

#if defined(MB_ARM64)
bool CpuHasArmCrc() {
#if defined(MB_ARM_CRC_ALWAYS)
  return true;
#elif defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#else
  return false;
#endif
}
MB_TARGET_CRC uint32_t CrcHw(uint32_t c, const uint8_t* p, size_t n) {
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = __crc32cb(c, *p++);
    n--;
  }
  while (n >= kLong * 3) {
    uint32_t c1 = 0, c2 = 0;
    const uint8_t* end = p + kLong;
    do {
      c = __crc32cd(c, LoadLE64(p));
      c1 = __crc32cd(c1, LoadLE64(p + kLong));
      c2 = __crc32cd(c2, LoadLE64(p + 2 * kLong));
      p += 8;
    } while (p < end);
    c = Shift(g_long, c) ^ c1;
    c = Shift(g_long, c) ^ c2;
    p += 2 * kLong;
    n -= 3 * kLong;
  }
  while (n >= 8) {
    c = __crc32cd(c, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  while (n--) c = __crc32cb(c, *p++);
  return c;
}
MB_TARGET_CRC uint32_t CrcHeaderHw(const uint8_t* p) {
  uint32_t c = 0xffffffffu;
  for (int i = 0; i < 7; i++) c = __crc32cd(c, LoadLE64(p + 8 * i));
  c = __crc32cw(c, LoadLE32(p + 56));
  return ~c;
}
#endif  // MB_ARM64

uint32_t CrcHeaderTable(const uint8_t* p) { return ~CrcTable(0xffffffffu, p, kCrcCovered); }

}  // namespace

CrcFn g_crc = CrcTable;
CrcHeaderFn g_crc_header = CrcHeaderTable;
const char* g_crc_impl = "table";

void InitCrc() {
  InitTable();
  Zeros(g_long, kLong);
  Zeros(g_short, kShort);
#if defined(MB_X86)
  if (CpuHasSse42()) {
    g_crc = CrcHw;
    g_crc_header = CrcHeaderHw;
    g_crc_impl = "sse4.2";
  }
#elif defined(MB_ARM64)
  if (CpuHasArmCrc()) {
    g_crc = CrcHw;
    g_crc_header = CrcHeaderHw;
    g_crc_impl = "armv8-crc";
  }
#endif
}

}  // namespace meshbus_crc
