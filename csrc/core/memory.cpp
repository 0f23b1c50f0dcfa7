#include "memory.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pyengine {

std::string tune_allocator() {
  static const std::string state = [] {
    const char* env = std::getenv("PYENGINE_MALLOC_TUNE");
    if (env != nullptr && std::strcmp(env, "0") == 0)
      return std::string("off (PYENGINE_MALLOC_TUNE=0)");
#if defined(__GLIBC__)
    // 32 MiB is glibc's largest mmap threshold on 64-bit; blocks below it come from the heap.
    // The trim threshold keeps up to 1 GiB of freed heap for reuse instead of unmapping it.
    const bool ok =
        mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
    return std::string(ok ? "glibc: mmap threshold 32 MiB, trim threshold 1 GiB"
                          : "glibc: mallopt failed");
#else
    return std::string("not glibc: unchanged");
#endif
  }();
  return state;
}

}  // namespace pyengine
