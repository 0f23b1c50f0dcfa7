// Shared helpers for the CUDA module pyengine._cuda: error checking and
// small conversions. Host-only parts compile with a plain C++ compiler too
// (bindings.cpp includes this file), so nothing here needs nvcc.
//
// Errors: a failing CUDA runtime call throws pyengine::cuda::CudaError (a
// std::runtime_error, so Python sees RuntimeError) whose message reads
//   "[op] CUDA error cudaErrorXxx (description) from `call` at file:line".
// Argument errors use pyengine::ValueError / TypeError from core/error.h and
// must be raised before any device memory is touched.
#pragma once
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace pyengine::cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check_cuda(cudaError_t err, const char* op, const char* call, const char* file,
                       int line) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // the exception reports it: leave no (non-sticky) error pending behind
  throw CudaError(::pyengine::detail::concat(op, "CUDA error ", cudaGetErrorName(err), " (",
                                             cudaGetErrorString(err), ") from `", call, "` at ",
                                             file, ":", line));
}

// Streams cross the Python boundary as integers (CuPy's Stream.ptr; 0 is the
// legacy default stream).
inline cudaStream_t stream_from_int(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Scratch device memory in stream order (cudaMallocAsync): freed on the same stream, after the
// kernels enqueued while it lives, so nothing synchronizes. Declare it before those launches.
struct StreamScratch {
  void* p = nullptr;
  cudaStream_t stream;
  StreamScratch(size_t bytes, cudaStream_t s, const char* op);
  ~StreamScratch() { cudaFreeAsync(p, stream); }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  template <typename U>
  U* as() const {
    return static_cast<U*>(p);
  }
};

}  // namespace pyengine::cuda

// PE_CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream), "gemm");
#define PE_CUDA_CHECK(call, op) \
  ::pyengine::cuda::check_cuda((call), (op), #call, __FILE__, __LINE__)

// After every kernel launch: catches bad launch configurations and errors
// already pending on this thread. Does not synchronize, so faults inside the
// kernel surface at the next synchronizing call, as with any async launch.
#define PE_CUDA_CHECK_LAUNCH(op) \
  ::pyengine::cuda::check_cuda(cudaGetLastError(), (op), "kernel launch", __FILE__, __LINE__)

namespace pyengine::cuda {

// Multiprocessors of the current device, cached per device (kernels size their grids by it).
inline int sm_count(const char* op) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];  // zero-initialized: static storage
  int dev = 0;
  PE_CUDA_CHECK(cudaGetDevice(&dev), op);
  if (dev >= 0 && dev < kMaxDevices) {
    const int cached = cache[dev].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int count = 0;
  PE_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev), op);
  if (dev >= 0 && dev < kMaxDevices) cache[dev].store(count, std::memory_order_relaxed);
  return count;
}

// Slices per group (a channel, a block of columns) for the partial-sum launches (batch_norm,
// layer_norm, the LSTM / GRU bias gradients): about 4 blocks per multiprocessor in all, at
// least 1, at most cap.
inline int64_t slices_per_group(int64_t groups, int64_t cap, const char* op) {
  const int64_t want = (4 * static_cast<int64_t>(sm_count(op)) + groups - 1) / groups;
  const int64_t s = want < cap ? want : cap;
  return s > 1 ? s : 1;
}

}  // namespace pyengine::cuda

inline pyengine::cuda::StreamScratch::StreamScratch(size_t bytes, cudaStream_t s, const char* op)
    : stream(s) {
  PE_CUDA_CHECK(cudaMallocAsync(&p, bytes < 16 ? 16 : bytes, s), op);
}
