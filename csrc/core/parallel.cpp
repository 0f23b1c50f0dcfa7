#include "parallel.h"

#include <atomic>

#include "error.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {
namespace {
std::atomic<int>& thread_count() {
#ifdef _OPENMP
  static std::atomic<int> n{omp_get_max_threads()};
#else
  static std::atomic<int> n{1};
#endif
  return n;
}
}  // namespace

int get_num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  PE_CHECK(n >= 1, "set_num_threads", "n must be >= 1 but is ", n);
#ifdef _OPENMP
  thread_count().store(n);
#endif
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

void team_block(int64_t n, int64_t& begin, int64_t& end) {
  begin = 0;
  end = n;
#ifdef _OPENMP
  const int64_t id = omp_get_thread_num(), size = omp_get_num_threads();
  begin = n * id / size;
  end = n * (id + 1) / size;
#endif
}

}  // namespace pyengine
