// Normalization kernels on the CPU: batch_norm and layer_norm, forward and fused backward.
//
// Layouts (row-major, C-contiguous, like C arrays):
//   batch_norm: x is (N, C, S) -- NCHW with S = H*W, (N, C, L) with S = L, or (N, C) with S = 1.
//               Statistics are per channel c over the N*S elements x[n, c, s].
//   layer_norm: x is (M, N) -- M rows, each normalized over its N trailing elements.
// Accuracy: float inputs accumulate in float within chunks of at most 1024 elements and in double
// across chunks; variances are two-pass (mean first, then the mean of squared deviations), so
// they stay accurate for large means (|mean| >> std).
// Threads: OpenMP, pyengine::get_num_threads(); batch_norm is parallel over channels (or over
// rows when S == 1), layer_norm over rows. The caller holds no GIL. Scratch memory comes from a
// per-thread workspace that grows and is reused (no allocation on the hot path once warm).
// ISA: inner loops are compiled per ISA (cpu/isa/norm_*.cpp) and picked by active_isa().
#pragma once
#include <cstdint>

namespace pyengine::cpu {

// batch_norm forward.
//   training: mean and biased variance of the batch normalize x:
//     y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]
//     If running_mean / running_var are given (both or neither), they are updated in place:
//       running_mean = (1 - momentum) * running_mean + momentum * mean
//       running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)
//     with M = N*S, which must be >= 2 (checked by the bindings).
//   eval (training == false): running_mean / running_var (required) normalize x; nothing updated.
//   weight / bias may be null (weight 1, bias 0).
//   save_mean / save_invstd (length C, overwritten): the mean and 1/sqrt(var + eps) used, so the
//   backward needs nothing else. y (N*C*S) is overwritten.
template <typename T>
struct BatchNormForward {
  int64_t N = 0, C = 0, S = 1;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* bias = nullptr;
  T* running_mean = nullptr;
  T* running_var = nullptr;
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  T* y = nullptr;
  T* save_mean = nullptr;
  T* save_invstd = nullptr;
};

// batch_norm backward, all three gradients in one pass per channel (two reductions,
// sum(dy) and sum(dy * (x - mean)), then dx):
//   training: dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x-mean)*invstd
//   eval:     dx = w * invstd * dy   (the statistics are constants)
//   dweight = sum(dy * xhat), dbias = sum(dy) over n, s.
// mean / invstd are the forward's save_mean / save_invstd. weight may be null (1).
// dx (N*C*S), dweight, dbias (C) are overwritten; each may be null (not computed).
template <typename T>
struct BatchNormBackward {
  int64_t N = 0, C = 0, S = 1;
  const T* dy = nullptr;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* mean = nullptr;
  const T* invstd = nullptr;
  bool training = true;
  T* dx = nullptr;
  T* dweight = nullptr;
  T* dbias = nullptr;
};

// layer_norm forward over the last N elements of each of M rows:
//   y = (x - mean) * rstd * weight[j] + bias[j],  rstd = 1/sqrt(biased var + eps)
// weight / bias (length N) may be null. y (M*N), mean and rstd (M) are overwritten.
template <typename T>
struct LayerNormForward {
  int64_t M = 0, N = 0;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* bias = nullptr;
  double eps = 1e-5;
  T* y = nullptr;
  T* mean = nullptr;
  T* rstd = nullptr;
};

// layer_norm backward, fused: with g = dy * weight and xhat = (x - mean) * rstd,
//   dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
//   dweight = sum_rows(dy * xhat), dbias = sum_rows(dy)
// dx (M*N), dweight, dbias (N) are overwritten; each may be null (not computed).
template <typename T>
struct LayerNormBackward {
  int64_t M = 0, N = 0;
  const T* dy = nullptr;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* mean = nullptr;
  const T* rstd = nullptr;
  T* dx = nullptr;
  T* dweight = nullptr;
  T* dbias = nullptr;
};

template <typename T>
void batch_norm_forward(const BatchNormForward<T>& a);
template <typename T>
void batch_norm_backward(const BatchNormBackward<T>& a);
template <typename T>
void layer_norm_forward(const LayerNormForward<T>& a);
template <typename T>
void layer_norm_backward(const LayerNormBackward<T>& a);

}  // namespace pyengine::cpu
