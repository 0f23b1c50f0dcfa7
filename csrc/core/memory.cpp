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
    // glibc caps the mmap threshold at 32 MiB, so larger arrays (a 8192x1024 float32 is exactly
    // 32 MiB) would still be mapped fresh each time: M_MMAP_MAX=0 serves every block from the
    // heap instead. The trim threshold keeps up to 1 GiB of freed heap top for reuse; holes
    // below the top stay mapped until trim_memory().
    // One arena: after a failed malloc (a MemoryError) glibc moves the thread to a secondary
    // arena for good, and those serve large blocks with fresh mmaps again.
    const bool ok = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 &&
                    mallopt(M_ARENA_MAX, 1) == 1;
    return std::string(ok ? "glibc: no mmap blocks (heap reuse), one arena, trim threshold 1 GiB"
                          : "glibc: mallopt failed");
#else
    return std::string("not glibc: unchanged");
#endif
  }();
  return state;
}

bool trim_memory() {
#if defined(__GLIBC__)
  return malloc_trim(0) == 1;
#else
  return false;
#endif
}

}  // namespace pyengine
