// Fused scaled-dot-product attention (FlashAttention-2 on the CPU). The
// contract is in attention.h; this file holds the blocking and the bookkeeping.
//
// Forward, per (b, h, query block of kBlockQ rows), keys in blocks of kBlockK:
//   S = scale * Q_i K_j^T            (our GEMM, alpha = scale)
//   S += mask, S = -inf above the causal diagonal
//   m' = max(m, rowmax S); P = exp(S - m'); l = l*exp(m - m') + rowsum P
//   O = O*exp(m - m') + dropout(P) V  (our GEMM, beta = 1)
// then O /= l and lse = m + log l. Only a kBlockQ x kBlockK block of scores
// exists at a time; causal blocks right of the diagonal are never visited.
//
// Backward, per (b, h) (or per (b, h, key chunk) when there are fewer heads
// than threads), keys outer, queries inner, from Q, K, V, O, dO and lse:
//   D = rowsum(dO * O)                (dropout included: D_i = sum_j Pd_ij dP_ij)
//   P = exp(S - lse); Pd = dropout(P)
//   dV_j += Pd^T dO_i; dP = dropout(dO_i V_j^T); dS = P * (dP - D)
//   dQ_i += scale dS K_j; dK_j += scale dS^T Q_i
// dK_j and dV_j are owned by the task; dQ is owned too (whole (b, h)) or, with
// a key split, summed from per-chunk partials afterwards.
#include "cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "core/workspace.h"
#include "cpu/gemm.h"
#include "cpu/isa/attention_kernels.h"

namespace pyengine::cpu {
namespace {

// Block sizes. A score block kBlockQ x kBlockK of fp32 is 64 KiB and stays in
// L2 (1 MiB per core on Zen 5) with the K and V blocks (kBlockK x 64 x 4 =
// 64 KiB each); kBlockQ is a multiple of the GEMM's MR (8) and kBlockK of its
// NR (32), so the block products have no ragged tiles at the usual sizes.
constexpr int64_t kBlockQ = 64;
constexpr int64_t kBlockK = 256;
// The backward uses square 128 x 128 blocks: its causal diagonal blocks are half
// wasted, so shorter key blocks waste less (one quiet A/B on Zen 5, 2 threads:
// 5-20% faster than 64 x 256 causal at L = 512..2048, equal non-causal; to be
// re-measured); three such blocks (192 KiB) still fit in L2.
constexpr int64_t kBwdBlockQ = 128;
constexpr int64_t kBwdBlockK = 128;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A per-thread, 64-byte aligned scratch buffer that grows and is reused.
using Scratch = ::pyengine::Workspace;  // csrc/core/workspace.h

thread_local Scratch t_blocks;    // score / probability blocks and row statistics
thread_local Scratch t_dq_parts;  // the calling thread's dQ partials (backward, key split)

// ---- row loops: ISA kernels for float, portable loops for double ----------------------
template <typename T>
struct Rows;

template <>
struct Rows<float> {
  attention_detail::RowKernelsF32 k;
  Rows() {
    switch (active_isa()) {
#if PYENGINE_X86
      case Isa::AVX512: k = attention_detail::avx512::rows_f32(); break;
      case Isa::AVX2: k = attention_detail::avx2::rows_f32(); break;
#endif
      default: k = attention_detail::generic::rows_f32(); break;
    }
  }
  float row_max(int64_t n, const float* s) const { return k.row_max(n, s); }
  float exp_sum(int64_t n, float* s, float shift) const { return k.exp_sum(n, s, shift); }
  void softmax_grad(int64_t n, const float* p, float* dp, float d) const {
    k.softmax_grad(n, p, dp, d);
  }
};

template <>
struct Rows<double> {
  double row_max(int64_t n, const double* s) const {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) m = s[j] > m ? s[j] : m;
    return m;
  }
  double exp_sum(int64_t n, double* s, double shift) const {
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - shift);
      sum += s[j];
    }
    return sum;
  }
  void softmax_grad(int64_t n, const double* p, double* dp, double d) const {
    for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - d);
  }
};

// ---- dropout: a counter-based hash, so the backward recomputes the mask ----------------
uint64_t mix64(uint64_t z) {  // the splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Dropout {
  bool on = false;
  uint64_t key = 0;     // mix64(seed)
  uint64_t thresh = 0;  // drop iff the top 32 bits of the hash are < thresh
  double inv_keep = 1.0;

  Dropout(uint64_t seed, double p) {
    on = p > 0.0;
    key = mix64(seed ^ 0x243f6a8885a308d3ULL);
    thresh = static_cast<uint64_t>(std::ldexp(p, 32));
    inv_keep = on ? 1.0 / (1.0 - p) : 1.0;
  }
  uint64_t row(int64_t bh, int64_t i) const {
    return mix64(key + static_cast<uint64_t>(bh) * 0x9e3779b97f4a7c15ULL +
                 static_cast<uint64_t>(i) * 0xd1b54a32d192ed03ULL);
  }
  bool keep(uint64_t row_key, int64_t j) const {
    return (mix64(row_key + static_cast<uint64_t>(j) * 0x8cb92ba72f3d8dd7ULL) >> 32) >= thresh;
  }
  // dst[c] = src[c] * keep(i, j0 + c) / (1 - p) for the mq x nk block at rows i0.., keys j0..
  template <typename T>
  void apply(int64_t bh, int64_t i0, int64_t mq, int64_t j0, int64_t nk, const T* src, T* dst,
             int64_t ld) const {
    const T s = static_cast<T>(inv_keep);
    for (int64_t r = 0; r < mq; ++r) {
      const uint64_t rk = row(bh, i0 + r);
      const T* a = src + r * ld;
      T* o = dst + r * ld;
      for (int64_t c = 0; c < nk; ++c) o[c] = keep(rk, j0 + c) ? a[c] * s : T(0);
    }
  }
};

// ---- masks -----------------------------------------------------------------------
// Adds the mask to (or sets -inf where a bool mask is false in) the mq x nk score
// block at rows i0.., keys j0.. of head (b, h), and applies the causal diagonal.
template <typename T>
void mask_block(const Mask4& m, bool causal, int64_t b, int64_t h, int64_t i0, int64_t mq,
                int64_t j0, int64_t nk, T* S, int64_t lds) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  if (m.ptr != nullptr) {
    const int64_t base = b * m.sb + h * m.sh + i0 * m.si + j0 * m.sj;
    for (int64_t r = 0; r < mq; ++r) {
      T* s = S + r * lds;
      if (m.is_bool) {
        const uint8_t* row = static_cast<const uint8_t*>(m.ptr) + base + r * m.si;
        if (m.sj == 1) {
          for (int64_t c = 0; c < nk; ++c) s[c] = row[c] ? s[c] : kNegInf;
        } else {
          for (int64_t c = 0; c < nk; ++c) s[c] = row[c * m.sj] ? s[c] : kNegInf;
        }
      } else {
        const T* row = static_cast<const T*>(m.ptr) + base + r * m.si;
        if (m.sj == 1) {
          for (int64_t c = 0; c < nk; ++c) s[c] += row[c];
        } else {
          for (int64_t c = 0; c < nk; ++c) s[c] += row[c * m.sj];
        }
      }
    }
  }
  if (causal && j0 + nk - 1 > i0) {  // the block reaches above the diagonal
    for (int64_t r = 0; r < mq; ++r) {
      const int64_t first = std::max<int64_t>(i0 + r - j0 + 1, 0);  // first masked column
      T* s = S + r * lds;
      for (int64_t c = first; c < nk; ++c) s[c] = kNegInf;
    }
  }
}

// Runs body(task) for task in [0, n) on up to get_num_threads() threads
// (dynamic schedule), after init() prepared each thread; rethrows the first
// exception after the region.
template <typename Init, typename Body>
void parallel_tasks(int64_t n, Init init, Body body) {
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(n, 1)));
  if (nt <= 1) {
    init();
    for (int64_t t = 0; t < n; ++t) body(t);
    return;
  }
  std::exception_ptr err = nullptr;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nt)
  {
    bool ok = true;
    try {
      init();
    } catch (...) {
      ok = false;
#pragma omp critical(pyengine_attention_err)
      if (!err) err = std::current_exception();
      failed = true;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n; ++t) {
      if (!ok || failed.load(std::memory_order_relaxed)) continue;
      try {
        body(t);
      } catch (...) {
#pragma omp critical(pyengine_attention_err)
        if (!err) err = std::current_exception();
        failed = true;
      }
    }
  }
  if (err) std::rethrow_exception(err);
}

// ---- forward -----------------------------------------------------------------------
template <typename T>
struct FwdWork {
  T* S;  // kBlockQ x kBlockK scores / probabilities
  T* m;  // running row max
  T* l;  // running row sum
};

template <typename T>
void forward_block(const AttnDims& d, const View4<T>& q, const View4<T>& k, const View4<T>& v,
                   const Mask4& mask, const AttnOptions& opt, const Rows<T>& rows,
                   const Dropout& drop, int64_t bh, int64_t q0, T* out, T* lse,
                   const FwdWork<T>& w) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const int64_t b = bh / d.H, h = bh % d.H;
  const int64_t mq = std::min(kBlockQ, d.Lq - q0);
  const T* Q = q.ptr + b * q.sb + h * q.sh + q0 * q.sl;
  const T* K = k.ptr + b * k.sb + h * k.sh;
  const T* V = v.ptr + b * v.sb + h * v.sh;
  T* O = out + (bh * d.Lq + q0) * d.Dv;
  const T scale = static_cast<T>(opt.scale);
  const int64_t kend = opt.causal ? std::min(d.Lk, q0 + mq) : d.Lk;
  std::fill(w.m, w.m + mq, -kInf);
  std::fill(w.l, w.l + mq, T(0));

  bool first = true;
  for (int64_t k0 = 0; k0 < kend; k0 += kBlockK) {
    const int64_t nk = std::min(kBlockK, kend - k0);
    gemm<T>(false, true, mq, nk, d.D, scale, Q, q.sl, K + k0 * k.sl, k.sl, T(0), w.S, kBlockK);
    mask_block<T>(mask, opt.causal, b, h, q0, mq, k0, nk, w.S, kBlockK);
    for (int64_t r = 0; r < mq; ++r) {
      T* s = w.S + r * kBlockK;
      const T mn = std::max(w.m[r], rows.row_max(nk, s));
      if (mn == -kInf) {  // nothing seen yet in this row: P = 0, the row of O stays 0
        std::fill(s, s + nk, T(0));
        continue;
      }
      const T rs = rows.exp_sum(nk, s, mn);
      const T alpha = std::exp(w.m[r] - mn);  // 0 when the old max is -inf
      w.l[r] = w.l[r] * alpha + rs;
      w.m[r] = mn;
      if (!first && alpha != T(1)) {
        T* o = O + r * d.Dv;
        for (int64_t c = 0; c < d.Dv; ++c) o[c] *= alpha;
      }
    }
    if (drop.on) drop.apply<T>(bh, q0, mq, k0, nk, w.S, w.S, kBlockK);
    gemm<T>(false, false, mq, d.Dv, nk, T(1), w.S, kBlockK, V + k0 * v.sl, v.sl,
            first ? T(0) : T(1), O, d.Dv);
    first = false;
  }
  T* L = lse + bh * d.Lq + q0;
  for (int64_t r = 0; r < mq; ++r) {
    T* o = O + r * d.Dv;
    if (first || w.m[r] == -kInf) {  // no key takes part: zeros, lse = +inf (backward: P = 0)
      std::fill(o, o + d.Dv, T(0));
      L[r] = kInf;
    } else {
      const T inv = T(1) / w.l[r];
      for (int64_t c = 0; c < d.Dv; ++c) o[c] *= inv;
      L[r] = w.m[r] + std::log(w.l[r]);
    }
  }
}

// ---- backward ----------------------------------------------------------------------
template <typename T>
struct BwdWork {
  T* S;   // scores, then P
  T* Pd;  // dropout(P) (== S without dropout)
  T* dP;  // dP, then dS
  T* Dr;  // rowsum(dO * O), Lq entries
};

// Key blocks kb = split, split + nsplit, ... of head bh; dQ (Lq x D) accumulates.
template <typename T>
void backward_keys(const AttnDims& d, const View4<T>& q, const View4<T>& k, const View4<T>& v,
                   const Mask4& mask, const AttnOptions& opt, const Rows<T>& rows,
                   const Dropout& drop, int64_t bh, int64_t split, int64_t nsplit, const T* out,
                   const T* lse, const T* dout, T* dQ, T* dk, T* dv, const BwdWork<T>& w) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const int64_t b = bh / d.H, h = bh % d.H;
  const T* Q = q.ptr + b * q.sb + h * q.sh;
  const T* K = k.ptr + b * k.sb + h * k.sh;
  const T* V = v.ptr + b * v.sb + h * v.sh;
  const T* O = out + bh * d.Lq * d.Dv;
  const T* dO = dout + bh * d.Lq * d.Dv;
  const T* L = lse + bh * d.Lq;
  const T scale = static_cast<T>(opt.scale);
  for (int64_t i = 0; i < d.Lq; ++i) {
    T acc = T(0);
    const T* a = O + i * d.Dv;
    const T* g = dO + i * d.Dv;
    for (int64_t c = 0; c < d.Dv; ++c) acc += a[c] * g[c];
    w.Dr[i] = acc;
  }
  const int64_t nkb = ceil_div(d.Lk, kBwdBlockK);
  for (int64_t kb = split; kb < nkb; kb += nsplit) {
    const int64_t k0 = kb * kBwdBlockK, nk = std::min(kBwdBlockK, d.Lk - k0);
    T* dK = dk + (bh * d.Lk + k0) * d.D;
    T* dV = dv + (bh * d.Lk + k0) * d.Dv;
    const T* Kj = K + k0 * k.sl;
    const T* Vj = V + k0 * v.sl;
    bool first = true;
    for (int64_t q0 = opt.causal ? k0 / kBwdBlockQ * kBwdBlockQ : 0; q0 < d.Lq; q0 += kBwdBlockQ) {
      const int64_t mq = std::min(kBwdBlockQ, d.Lq - q0);
      const T* Qi = Q + q0 * q.sl;
      const T* dOi = dO + q0 * d.Dv;
      gemm<T>(false, true, mq, nk, d.D, scale, Qi, q.sl, Kj, k.sl, T(0), w.S, kBwdBlockK);
      mask_block<T>(mask, opt.causal, b, h, q0, mq, k0, nk, w.S, kBwdBlockK);
      for (int64_t r = 0; r < mq; ++r) {
        T* s = w.S + r * kBwdBlockK;
        const T lr = L[q0 + r];
        if (lr == kInf)
          std::fill(s, s + nk, T(0));
        else
          rows.exp_sum(nk, s, lr);
      }
      const T* Pd = w.S;
      if (drop.on) {
        drop.apply<T>(bh, q0, mq, k0, nk, w.S, w.Pd, kBwdBlockK);
        Pd = w.Pd;
      }
      gemm<T>(true, false, nk, d.Dv, mq, T(1), Pd, kBwdBlockK, dOi, d.Dv, first ? T(0) : T(1), dV,
              d.Dv);
      gemm<T>(false, true, mq, nk, d.Dv, T(1), dOi, d.Dv, Vj, v.sl, T(0), w.dP, kBwdBlockK);
      if (drop.on) drop.apply<T>(bh, q0, mq, k0, nk, w.dP, w.dP, kBwdBlockK);
      for (int64_t r = 0; r < mq; ++r)
        rows.softmax_grad(nk, w.S + r * kBwdBlockK, w.dP + r * kBwdBlockK, w.Dr[q0 + r]);
      gemm<T>(false, false, mq, d.D, nk, scale, w.dP, kBwdBlockK, Kj, k.sl, T(1), dQ + q0 * d.D,
              d.D);
      gemm<T>(true, false, nk, d.D, mq, scale, w.dP, kBwdBlockK, Qi, q.sl, first ? T(0) : T(1), dK,
              d.D);
      first = false;
    }
    if (first) {  // no query sees these keys
      std::fill(dK, dK + nk * d.D, T(0));
      std::fill(dV, dV + nk * d.Dv, T(0));
    }
  }
}

}  // namespace

bool dropout_keep(uint64_t seed, int64_t bh, int64_t i, int64_t j, double p) {
  const Dropout drop(seed, p);
  return !drop.on || drop.keep(drop.row(bh, i), j);
}

template <typename T>
void sdpa_forward(const AttnDims& d, View4<T> q, View4<T> k, View4<T> v, const Mask4& mask,
                  const AttnOptions& opt, T* out, T* lse) {
  const int64_t BH = d.B * d.H;
  if (BH == 0 || d.Lq == 0) return;
  const Rows<T> rows;
  const Dropout drop(opt.seed, opt.dropout_p);
  const int64_t nqb = ceil_div(d.Lq, kBlockQ);
  // Heaviest blocks first (causal: the last query blocks see the most keys).
  parallel_tasks(
      BH * nqb, [] { t_blocks.get<T>(kBlockQ * kBlockK + 2 * kBlockQ); },
      [&](int64_t t) {
        T* base = t_blocks.get<T>(kBlockQ * kBlockK + 2 * kBlockQ);
        const FwdWork<T> w{base, base + kBlockQ * kBlockK, base + kBlockQ * kBlockK + kBlockQ};
        const int64_t qb = nqb - 1 - t / BH, bh = t % BH;
        forward_block<T>(d, q, k, v, mask, opt, rows, drop, bh, qb * kBlockQ, out, lse, w);
      });
}

template <typename T>
void sdpa_backward(const AttnDims& d, View4<T> q, View4<T> k, View4<T> v, const Mask4& mask,
                   const AttnOptions& opt, const T* out, const T* lse, const T* dout, T* dq, T* dk,
                   T* dv) {
  const int64_t BH = d.B * d.H;
  if (BH == 0) return;
  if (d.Lk == 0) {  // nothing attends: every gradient is 0
    std::fill(dq, dq + BH * d.Lq * d.D, T(0));
    return;
  }
  const Rows<T> rows;
  const Dropout drop(opt.seed, opt.dropout_p);
  const int64_t nkb = ceil_div(d.Lk, kBwdBlockK);
  const int nt = get_num_threads();
  // Fewer heads than threads: split each head's key blocks, dQ from partials.
  const int64_t nsplit =
      BH >= nt ? 1 : std::min<int64_t>(nkb, ceil_div(2 * static_cast<int64_t>(nt), BH));
  const int64_t qd = d.Lq * d.D;
  T* parts = nsplit > 1 ? t_dq_parts.get<T>(BH * nsplit * qd) : nullptr;
  const int64_t ws = 3 * kBwdBlockQ * kBwdBlockK + d.Lq;
  parallel_tasks(
      BH * nsplit, [&] { t_blocks.get<T>(ws); },
      [&](int64_t t) {
        T* base = t_blocks.get<T>(ws);
        const int64_t n = kBwdBlockQ * kBwdBlockK;
        const BwdWork<T> w{base, base + n, base + 2 * n, base + 3 * n};
        const int64_t bh = t / nsplit, split = t % nsplit;
        T* dQ = nsplit > 1 ? parts + t * qd : dq + bh * qd;
        std::fill(dQ, dQ + qd, T(0));
        backward_keys<T>(d, q, k, v, mask, opt, rows, drop, bh, split, nsplit, out, lse, dout, dQ,
                         dk, dv, w);
      });
  if (nsplit > 1) {
    parallel_tasks(
        BH, [] {},
        [&](int64_t bh) {
          T* dst = dq + bh * qd;
          const T* src = parts + bh * nsplit * qd;
          std::copy(src, src + qd, dst);
          for (int64_t s = 1; s < nsplit; ++s)
            for (int64_t e = 0; e < qd; ++e) dst[e] += src[s * qd + e];
        });
  }
}

template void sdpa_forward<float>(const AttnDims&, View4<float>, View4<float>, View4<float>,
                                  const Mask4&, const AttnOptions&, float*, float*);
template void sdpa_forward<double>(const AttnDims&, View4<double>, View4<double>, View4<double>,
                                   const Mask4&, const AttnOptions&, double*, double*);
template void sdpa_backward<float>(const AttnDims&, View4<float>, View4<float>, View4<float>,
                                   const Mask4&, const AttnOptions&, const float*, const float*,
                                   const float*, float*, float*, float*);
template void sdpa_backward<double>(const AttnDims&, View4<double>, View4<double>, View4<double>,
                                    const Mask4&, const AttnOptions&, const double*, const double*,
                                    const double*, double*, double*, double*);

}  // namespace pyengine::cpu
