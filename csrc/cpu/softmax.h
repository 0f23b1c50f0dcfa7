// Softmax family on the CPU: softmax / log_softmax over one dim, their backward, and the fused
// losses cross_entropy (forward + d loss / d logits in one kernel) and nll_loss.
//
// Layout: a C-contiguous tensor viewed as (outer, dim, inner): element (o, c, i) is at
// (o * dim + c) * inner + i and the op runs over c. inner == 1 (the last dim) is the fast path:
// one pass for the max, one for exp and its sum, one that writes. inner > 1 walks blocks of up
// to 64 positions of inner at a time, so the loops over c stay vectorized along inner.
// Losses: the input (logits or log-probabilities) is (N, C, D) -- torch's (N, C, d1, ...) with
// D = d1*...; (N, C) is D = 1. Class-index targets are (N, D) int64; probability targets have the
// input's shape.
// Accuracy: the max is subtracted before exp; sums of exp and log-sum-exp are kept in double for
// the losses, so logits of +-1e4 give exact-looking losses and no overflow. exp(-inf) is 0; a row
// that is all -inf gives NaN, as torch.
// Threads: OpenMP, pyengine::get_num_threads(), over rows (blocks of inner) / samples. The caller
// holds no GIL. ISA: compiled per ISA (cpu/isa/softmax_*.cpp), picked by active_isa().
#pragma once
#include <cstdint>

namespace pyengine::cpu {

// y = softmax(x) (log == false) or log_softmax(x) (log == true) over dim; y is overwritten and
// may not alias x.
template <typename T>
void softmax_forward(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y, bool log);

// dx from the forward's output y and the incoming gradient dy (dx overwritten):
//   softmax:     dx = y * (dy - sum_c dy * y)
//   log_softmax: dx = dy - exp(y) * sum_c dy
template <typename T>
void softmax_backward(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* dy, T* dx,
                      bool log);

// cross_entropy with torch's semantics, per sample s = (n, d), unreduced:
//   class index t (target[s] in [0, C) or == ignore_index), eps = label_smoothing,
//   logp = log_softmax(x[n, :, d]), w_c = weight[c] or 1:
//     loss[s] = (1 - eps) * w_t * (-logp_t) + eps / C * sum_c w_c * (-logp_c);   0 if ignored
//     sample_weight[s] = w_t (0 if ignored) -- the 'mean' reduction divides by its sum
//   probabilities q (target_prob, same shape as x), q'_c = (1 - eps) * q_c + eps / C:
//     loss[s] = -sum_c w_c * q'_c * logp_c;  sample_weight[s] = 1
//   dlogits (optional, same shape as x) = d loss[s] / d x[n, :, d], overwritten:
//     class index: p_k * ((1-eps) w_t + eps/C * sum_c w_c) - eps/C * w_k - (1-eps) w_t [k == t]
//     probabilities: p_k * sum_c w_c q'_c - w_k q'_k
// Exactly one of target / target_prob is given. Targets must be valid (checked by the bindings).
// loss and sample_weight ((N, D)) are overwritten; sample_weight and dlogits may be null.
template <typename T>
struct CrossEntropy {
  int64_t N = 0, C = 0, D = 1;
  const T* x = nullptr;
  const int64_t* target = nullptr;
  const T* target_prob = nullptr;
  const T* weight = nullptr;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  T* loss = nullptr;
  T* sample_weight = nullptr;
  T* dlogits = nullptr;
};

template <typename T>
void cross_entropy_forward(const CrossEntropy<T>& a);

// nll_loss on log-probabilities x (N, C, D), class-index target (N, D):
//   loss[s] = -w_t * x[n, t, d], sample_weight[s] = w_t; both 0 where target == ignore_index.
// Backward: dx[n, c, d] = -w_t * g[s] if c == t (and not ignored), else 0; dx overwritten.
template <typename T>
struct NllLoss {
  int64_t N = 0, C = 0, D = 1;
  const T* x = nullptr;
  const int64_t* target = nullptr;
  const T* weight = nullptr;
  int64_t ignore_index = -100;
  T* loss = nullptr;
  T* sample_weight = nullptr;
};

template <typename T>
void nll_loss_forward(const NllLoss<T>& a);
template <typename T>
void nll_loss_backward(int64_t N, int64_t C, int64_t D, const int64_t* target, const T* weight,
                       int64_t ignore_index, const T* g, T* dx);

}  // namespace pyengine::cpu
