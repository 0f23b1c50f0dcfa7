// Fused scaled-dot-product attention on CUDA (flash-style): float, double, and
// float16 with float32 accumulation.
//
// Same definition as csrc/cpu/attention.h (read the contract there): out =
// softmax(scale * Q K^T + mask) V per (b, h), causal top-left, a fully masked
// row gives out = 0 and lse = +inf, dropout kept iff the counter-based hash of
// (seed, b*H + h, i, j) says so -- the same hash as the CPU kernels, so a seed
// drops the same elements on both devices.
//
// Device pointers; Q, K, V are (B, H, L, E) views with a unit last stride
// (element strides sb, sh, sl); out (B,H,Lq,Dv), lse (B,H,Lq), dout, dq, dk,
// dv are C-contiguous. Outputs are OVERWRITTEN. Enqueued on `stream`; nothing
// synchronizes. Head dims D, Dv <= kMaxHeadDim; every size < 2^31.
// Method: one thread per query row (forward, dQ) or key row (dK, dV); K/V
// (or Q/dO) tiles staged in shared memory; online softmax in registers. The
// backward recomputes the probabilities from lse and runs two passes (dK/dV
// by key rows, dQ by query rows), so there are no atomics and results are
// deterministic. `rowdot` is caller-provided scratch of B*H*Lq elements.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyengine::cuda {

constexpr int kMaxHeadDim = 128;

struct AttnView {
  const void* ptr = nullptr;
  int64_t sb = 0, sh = 0, sl = 0;  // element strides; the last dim has stride 1
};

struct AttnMask {
  const void* ptr = nullptr;  // null: no mask
  int kind = 0;               // 0 none, 1 bool (uint8, nonzero = attend), 2 additive of T
  int64_t sb = 0, sh = 0, si = 0, sj = 0;
};

struct AttnParams {
  int64_t B = 0, H = 0, Lq = 0, Lk = 0, D = 0, Dv = 0;
  AttnView q, k, v;
  AttnMask mask;
  bool causal = false;
  double scale = 1.0;
  double dropout_p = 0.0;
  uint64_t seed = 0;
};

template <typename T>
void sdpa_forward(const AttnParams& p, T* out, T* lse, cudaStream_t stream);

template <typename T>
void sdpa_backward(const AttnParams& p, const T* out, const T* lse, const T* dout, T* rowdot, T* dq,
                   T* dk, T* dv, cudaStream_t stream);

// float16 storage (IEEE half, passed as its 16-bit pattern), float32 accumulation: q, k, v, an
// additive mask, out, dout, dq, dk, dv are half; lse and rowdot are float32.
void sdpa_forward_f16(const AttnParams& p, uint16_t* out, float* lse, cudaStream_t stream);
void sdpa_backward_f16(const AttnParams& p, const uint16_t* out, const float* lse,
                       const uint16_t* dout, float* rowdot, uint16_t* dq, uint16_t* dk,
                       uint16_t* dv, cudaStream_t stream);

}  // namespace pyengine::cuda
