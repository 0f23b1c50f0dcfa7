// Internal helpers for the row-wise kernel families (norm, softmax) that are compiled once per
// ISA (cpu/isa/<family>_<isa>.cpp include cpu/isa/<family>_impl.h). Everything here is in an
// anonymous namespace: each ISA translation unit gets its own copy, so no inline code compiled
// with wide-ISA flags can be picked by the linker for a baseline caller (ODR hazard).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/parallel.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

// A 64-byte aligned scratch buffer that grows and is reused (one per thread).
class RowScratch {
 public:
  RowScratch() = default;
  RowScratch(const RowScratch&) = delete;
  RowScratch& operator=(const RowScratch&) = delete;
  ~RowScratch() { std::free(ptr_); }

  template <typename U>
  U* get(int64_t elems) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(elems, 1)) * sizeof(U);
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      ptr_ = std::aligned_alloc(64, rounded);
      if (ptr_ == nullptr) throw std::bad_alloc();
      cap_ = rounded;
    }
    return static_cast<U*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

inline int team_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Threads worth using for `work` element-operations: below ~32K elements per thread forking a
// team costs more than it saves. Never nests inside an enclosing parallel region.
inline int threads_for(int64_t work, int64_t units) {
  int nt = pyengine::get_num_threads();
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
#endif
  const int64_t by_work = std::max<int64_t>(1, work / 32768);
  nt = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(nt), by_work, units}));
  return std::max(nt, 1);
}

// [begin, end) of `n` items for member `id` of a team of `size` (contiguous static blocks).
inline void split_range(int64_t n, int id, int size, int64_t& begin, int64_t& end) {
  const int64_t q = n / size, r = n % size;
  begin = id * q + std::min<int64_t>(id, r);
  end = begin + q + (id < r ? 1 : 0);
}

// Chunk length of float accumulations before they are added into a double.
constexpr int64_t kSumChunk = 1024;

}  // namespace
