// Fused scaled-dot-product attention on the CPU (FlashAttention-2 style).
//
//   out = softmax(scale * Q K^T + mask) V, softmax over keys, per (b, h).
//
// Layout: Q (B, H, Lq, D), K (B, H, Lk, D), V (B, H, Lk, Dv) as strided views
// with a unit stride along the last dim (View4); row strides must be >= the
// row length (D or Dv), batch/head strides are free (0 = broadcast).
// out (B, H, Lq, Dv) and lse (B, H, Lq) are C-contiguous and overwritten.
// Masks (Mask4, optional): element (b, h, i, j) at ptr[b*sb + h*sh + i*si + j*sj]
// (strides in elements, 0 = broadcast); a bool mask (uint8, nonzero = the key
// takes part, as torch) or an additive mask of T. causal: query i sees keys
// j <= i (top-left aligned, as torch), fully masked key blocks are skipped.
// A fully masked row (every score -inf) gives out = 0, lse = +inf (the marker
// the backward reads as "P = 0"), and zero gradients. Dropout with probability
// p in [0, 1): P[i, j] is kept (and scaled by 1/(1-p)) iff
// dropout_keep(seed, b*H + h, i, j, p); no mask is stored, the backward
// recomputes it. No L x L matrix is formed: per thread a Bq x Bk score block.
// Threads: OpenMP over (b, h, query block) forward, over (b, h[, key chunk])
// backward; the caller holds no GIL. Scratch is a per-thread reused workspace.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

template <typename T>
struct View4 {
  const T* ptr = nullptr;
  int64_t sb = 0, sh = 0, sl = 0;  // element strides of batch, head, row
};

struct Mask4 {
  const void* ptr = nullptr;  // null: no mask
  bool is_bool = false;       // uint8 (nonzero = attend) or additive of the kernel's T
  int64_t sb = 0, sh = 0, si = 0, sj = 0;
};

struct AttnDims {
  int64_t B = 0, H = 0, Lq = 0, Lk = 0, D = 0, Dv = 0;
};

struct AttnOptions {
  bool causal = false;
  double scale = 1.0;      // multiplies Q K^T
  double dropout_p = 0.0;  // in [0, 1)
  uint64_t seed = 0;
};

// out (B,H,Lq,Dv) and lse (B,H,Lq) are overwritten.
template <typename T>
void sdpa_forward(const AttnDims& d, View4<T> q, View4<T> k, View4<T> v, const Mask4& mask,
                  const AttnOptions& opt, T* out, T* lse);

// From Q, K, V, the forward's out and lse, and dout (B,H,Lq,Dv) C-contiguous:
// dq (B,H,Lq,D), dk (B,H,Lk,D), dv (B,H,Lk,Dv), C-contiguous, overwritten.
template <typename T>
void sdpa_backward(const AttnDims& d, View4<T> q, View4<T> k, View4<T> v, const Mask4& mask,
                   const AttnOptions& opt, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                   T* dv);

// The dropout decision: a counter-based hash of (seed, bh, i, j); true = kept.
bool dropout_keep(uint64_t seed, int64_t bh, int64_t i, int64_t j, double p);

}  // namespace pyengine::cpu
