// The C library allocator's settings for a process that runs a node
// (tuneAllocator in index.ts). Kept apart from addon.cc: it is not byte work
// and it changes the whole process, so nothing calls it but the code that owns
// the process (`meshbus start`).
//
// Why (bench/README, "Page faults and the C allocator"): Node allocates a
// 64 KiB buffer for every socket read and copies what was read into a second
// allocation of the read's size, which lives until the garbage collector frees
// its Buffer. The collector frees them by the hundred at once; glibc then
// returns the free top of its heap to the kernel (trim) and the next reads
// fault the pages in again: 15-20 thousand page faults a second in a node
// forwarding 128-byte events, which ran at 610-790 k events/s in those runs
// and at 1.15-1.65 M when the heap's layout happened to leave no free top to
// trim. M_TOP_PAD keeps that much free memory at the top of the heap when
// trimming (and asks the kernel for that much more when growing it).

#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace meshbus_allocator {

// tuneAllocator(topPadBytes: number) -> boolean: true when the C library took
// the setting (glibc), false where there is nothing to set (musl, macOS,
// Windows). Throws RangeError for a pad that is not an integer in [0, 1 GiB].
napi_value JsTuneAllocator(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  double pad = -1;
  if (argc < 1 || napi_get_value_double(env, argv[0], &pad) != napi_ok || !(pad >= 0) ||
      pad > 1073741824.0 || pad != static_cast<double>(static_cast<long long>(pad))) {
    napi_throw_range_error(env, nullptr, "tuneAllocator: topPadBytes must be an integer in [0, 1 GiB]");
    return nullptr;
  }
  bool applied = false;
#if defined(__GLIBC__)
  applied = mallopt(M_TOP_PAD, static_cast<int>(pad)) == 1;
#endif
  napi_value out;
  napi_get_boolean(env, applied, &out);
  return out;
}

void Register(Napi::Env env, Napi::Object exports) {
  napi_value fn;
  napi_create_function(env, "tuneAllocator", NAPI_AUTO_LENGTH, JsTuneAllocator, nullptr, &fn);
  exports.Set("tuneAllocator", Napi::Value(env, fn));
}

}  // namespace meshbus_allocator
