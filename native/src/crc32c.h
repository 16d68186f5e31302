// CRC32C (Castagnoli) of the addon (crc32c.cc): the CPU instruction where
// there is one (SSE4.2, ARMv8 CRC, checked at load), slicing-by-8 otherwise.
// Same results as proto/src/crc32c.ts, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meshbus_crc {

constexpr size_t kCrcCovered = 60;  // a header's CRC covers bytes [0, 60) of the frame

// All variants take and return the *raw* register (already inverted), so they compose.
using CrcFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);
using CrcHeaderFn = uint32_t (*)(const uint8_t*);
extern CrcFn g_crc;
// ~CRC of the 60 header bytes at p.
extern CrcHeaderFn g_crc_header;
// "sse4.2", "armv8-crc" or "table".
extern const char* g_crc_impl;

// Builds the tables and picks the implementation for this CPU; once, before any CRC.
void InitCrc();

inline uint32_t Crc32c(const uint8_t* p, size_t n, uint32_t crc) { return ~g_crc(~crc, p, n); }

}  // namespace meshbus_crc
