// Internal helpers for the row-wise kernel families (norm, softmax) that are compiled once per
// ISA (cpu/isa/<family>_<isa>.cpp include cpu/isa/<family>_impl.h). Everything here is in an
// anonymous namespace: each ISA translation unit gets its own copy, so no inline code compiled
// with wide-ISA flags can be picked by the linker for a baseline caller (ODR hazard).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

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

// Two kinds of reductions. stream_sum* walk memory in order with one vector accumulator: for
// the first pass over data coming from DRAM, where a sequential stream keeps the hardware
// prefetcher ahead and the adds hide behind the loads (measured: 4 interleaved streams per
// 3 KB row cost 30% of bandwidth). lane_sum* run four independent accumulators over the
// four quarters of each chunk, for data already in L1 / L2, where one accumulator would
// make the sum latency-bound.

// sum_{i < n} f(i), sequential
template <typename T, typename F>
inline double stream_sum(int64_t n, F f) {
  double total = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - c0);
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = c0; i < c0 + len; ++i) s += f(i);
    total += static_cast<double>(s);
  }
  return total;
}

// (sum f0, sum f1) added into s0, s1, sequential
template <typename T, typename F0, typename F1>
inline void stream_sum2(int64_t n, F0 f0, F1 f1, double& s0, double& s1) {
  for (int64_t c0 = 0; c0 < n; c0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - c0);
    T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = c0; i < c0 + len; ++i) {
      a += f0(i);
      b += f1(i);
    }
    s0 += static_cast<double>(a);
    s1 += static_cast<double>(b);
  }
}

// Reductions run four independent vector accumulators over the four quarters of each chunk,
// so consecutive vector adds do not wait on one another (one accumulator would make a sum
// latency-bound); each lane sums at most kSumChunk / (4 * vector width) terms in T before the
// chunk is added into a double.

// sum_{i < n} f(i)
template <typename T, typename F>
inline double lane_sum(int64_t n, F f) {
  double total = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - c0), q = len / 4;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t i = c0; i < c0 + q; ++i) {
      s0 += f(i);
      s1 += f(i + q);
      s2 += f(i + 2 * q);
      s3 += f(i + 3 * q);
    }
    for (int64_t i = c0 + 4 * q; i < c0 + len; ++i) s0 += f(i);
    total += static_cast<double>((s0 + s1) + (s2 + s3));
  }
  return total;
}

// (sum_{i < n} f0(i), sum_{i < n} f1(i)) in one pass, added into s0 and s1
template <typename T, typename F0, typename F1>
inline void lane_sum2(int64_t n, F0 f0, F1 f1, double& s0, double& s1) {
  for (int64_t c0 = 0; c0 < n; c0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - c0), q = len / 4;
    T a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
    for (int64_t i = c0; i < c0 + q; ++i) {
      a0 += f0(i);
      a1 += f0(i + q);
      a2 += f0(i + 2 * q);
      a3 += f0(i + 3 * q);
      b0 += f1(i);
      b1 += f1(i + q);
      b2 += f1(i + 2 * q);
      b3 += f1(i + 3 * q);
    }
    for (int64_t i = c0 + 4 * q; i < c0 + len; ++i) {
      a0 += f0(i);
      b0 += f1(i);
    }
    s0 += static_cast<double>((a0 + a1) + (a2 + a3));
    s1 += static_cast<double>((b0 + b1) + (b2 + b3));
  }
}

// Row kernels read a row from DRAM once, then work on it in L1 for a pass or two, during which
// the hardware prefetcher sees no traffic. So each row first asks for the row `ahead` rows
// later (about 6 KB ahead; measured on Zen 5: layer_norm forward 8192x768 goes from 2.1 to
// 1.6 ms on one core). Rows longer than 16 KB stream well enough on their own.
template <typename T>
inline int64_t rows_ahead(int64_t n) {
  const int64_t bytes = n * static_cast<int64_t>(sizeof(T));
  if (bytes == 0 || bytes > 16384) return 0;
  return std::max<int64_t>(1, std::min<int64_t>(8, 6144 / bytes));
}

template <typename T>
inline void prefetch_row(const T* p, int64_t n) {
  constexpr int64_t kPerLine = 64 / sizeof(T);
  for (int64_t i = 0; i < n; i += kPerLine) __builtin_prefetch(p + i, 0, 3);
}

// The same for a row about to be written: fetched for ownership ahead of the stores, so they
// do not stall the store buffer on read-for-ownership misses.
template <typename T>
inline void prefetch_row_w(T* p, int64_t n) {
  constexpr int64_t kPerLine = 64 / sizeof(T);
  for (int64_t i = 0; i < n; i += kPerLine) __builtin_prefetch(p + i, 1, 3);
}

// Large outputs are written with streaming (non-temporal) stores: each row is built in a
// per-thread buffer, then streamed out. A plain store to a line that is not in cache reads it
// first (read for ownership), so a pass that reads x and writes y moves three arrays through
// DRAM instead of two; an output this large (beside its input) would not stay in the 32 MiB L3
// anyway. Measured on Zen 5, 2 threads: layer_norm 8192x768 fwd+bwd 49 -> 63 GB/s; softmax's
// backward (dx) 8192x1024 fwd+bwd +10% (log_softmax +2%). Softmax's forward keeps plain stores:
// streaming its y (which the backward reads) measured within 5% either way. Rows over
// kStreamRowMax are written in place (their buffer would not stay in L2).
constexpr int64_t kStreamBytes = int64_t(12) << 20;
constexpr int64_t kStreamRowMax = int64_t(256) << 10;

inline bool streamed(int64_t rows, int64_t row_bytes) {
  return rows * row_bytes >= kStreamBytes && row_bytes <= kStreamRowMax;
}

inline RowScratch& stream_row_buffer() {  // this thread's (one per ISA translation unit)
  static thread_local RowScratch buf;
  return buf;
}

// dst[0:n] = src[0:n] (src a row in L1), the 64-byte aligned part with streaming stores.
// Callers order the stores with stream_fence() before other threads read dst.
template <typename T>
inline void stream_copy(T* dst, const T* src, int64_t n) {
#if defined(__SSE2__)  // x86-64 (AVX and AVX-512 imply it)
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 63) != 0; ++i) dst[i] = src[i];
  constexpr int64_t kLine = 64 / sizeof(T);
  for (; i + kLine <= n; i += kLine) {
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i),
                        _mm512_loadu_si512(reinterpret_cast<const void*>(src + i)));
#elif defined(__AVX__)
    const __m256i* s = reinterpret_cast<const __m256i*>(src + i);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_loadu_si256(s));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i) + 1, _mm256_loadu_si256(s + 1));
#else
    const __m128i* s = reinterpret_cast<const __m128i*>(src + i);
    __m128i* d = reinterpret_cast<__m128i*>(dst + i);
    for (int q = 0; q < 4; ++q) _mm_stream_si128(d + q, _mm_loadu_si128(s + q));
#endif
  }
  for (; i < n; ++i) dst[i] = src[i];
#else
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
#endif
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Runs row(r, out, streaming) for r in [0, rows) on nt threads (static schedule). out is dst's
// row r (n values), or, when streamed(), the calling thread's row buffer, streamed to dst's row r
// after row() returns.
template <typename T, typename F>
inline void for_rows_out(int nt, int64_t rows, int64_t n, T* dst, F row) {
  const bool streaming = streamed(rows, n * static_cast<int64_t>(sizeof(T)));
#pragma omp parallel num_threads(nt)
  {
    T* tmp = streaming ? stream_row_buffer().get<T>(n) : nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      row(r, tmp ? tmp : dst + r * n, streaming);
      if (tmp) stream_copy(dst + r * n, tmp, n);
    }
    if (streaming) stream_fence();
  }
}

}  // namespace
