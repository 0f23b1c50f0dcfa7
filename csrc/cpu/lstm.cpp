// LSTM / GRU layer drivers: the GEMMs, the time loop and the bookkeeping of
// variable lengths. The fused pointwise passes are in cpu/isa/lstm_*.cpp.
// Contracts: cpu/lstm.h.
#include "cpu/lstm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "core/workspace.h"
#include "cpu/gemm.h"
#include "cpu/isa/gemm_kernels.h"
#include "cpu/isa/lstm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {
namespace {

using rnn_detail::RnnKernels;

// Below this many hidden units per step (N*H), one thread runs the pointwise
// pass: forking a team costs a few microseconds, about what 8K units take.
constexpr int64_t kParallelMinUnits = 8192;

template <typename T>
RnnKernels<T> select_kernels();

template <>
RnnKernels<float> select_kernels<float>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return rnn_detail::avx512::rnn_f32();
    case Isa::AVX2: return rnn_detail::avx2::rnn_f32();
#endif
    default: return rnn_detail::generic::rnn_f32();
  }
}

// float64 exists for gradient checks; it need not be fast.
template <>
RnnKernels<double> select_kernels<double>() {
  return rnn_detail::generic::rnn_f64();
}

// ---- workspace -----------------------------------------------------------------
// A per-thread, 64-byte aligned buffer that grows and is reused, carved into
// the arrays one call needs (fresh pages are expensive on our VMs).
using ::pyengine::Workspace;  // csrc/core/workspace.h

thread_local Workspace t_ws;

// Carves arrays of T out of t_ws: declare the sizes with want(), then take().
template <typename T>
class Carver {
 public:
  // Reserves n elements (rounded up to 64 bytes) and returns the slot's index.
  int want(int64_t n) {
    sizes_[count_] = (n * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64;
    return count_++;
  }
  void allocate() {
    size_t total = 0;
    for (int k = 0; k < count_; ++k) total += static_cast<size_t>(sizes_[k]);
    base_ = static_cast<char*>(t_ws.get(std::max<size_t>(total, 64)));
  }
  T* take(int slot) const {
    size_t off = 0;
    for (int k = 0; k < slot; ++k) off += static_cast<size_t>(sizes_[k]);
    return reinterpret_cast<T*>(base_ + off);
  }

 private:
  int64_t sizes_[8] = {};
  int count_ = 0;
  char* base_ = nullptr;
};

// Runs f(n) for n in [0, N), over the team when the step is big enough.
template <class F>
void for_rows(int64_t N, int64_t H, const F& f) {
  const int nt = get_num_threads();
  if (nt > 1 && N > 1 && N * H >= kParallelMinUnits) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t n = 0; n < N; ++n) f(n);
  } else {
    for (int64_t n = 0; n < N; ++n) f(n);
  }
}

// out[j] = sum over rows r of a[r*ld + j], j < cols (overwrite).
template <typename T>
void column_sums(int64_t rows, int64_t cols, const T* a, int64_t ld, T* out) {
  constexpr int64_t kBlock = 256;  // columns per task: a 1 KiB accumulator row
  const int64_t nblocks = (cols + kBlock - 1) / kBlock;
  const int nt = get_num_threads();
  const bool par = nt > 1 && nblocks > 1 && rows * cols >= (int64_t{1} << 16);
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t j0 = b * kBlock, j1 = std::min(cols, j0 + kBlock);
    T* o = out + j0;
    for (int64_t j = 0; j < j1 - j0; ++j) o[j] = T(0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = a + r * ld + j0;
      for (int64_t j = 0; j < j1 - j0; ++j) o[j] += row[j];
    }
  }
}

// Bias gradients of a time loop: the pointwise backward adds each row's gate gradients into
// the partial sum of the row's MR-row block while they are in cache (per row block, not per
// thread, so the sum does not depend on the thread count), and the blocks' partials are added
// in block order here, instead of re-reading the T*N x G gradients afterwards (16 MiB at T32
// N64 H=512: fwd+bwd 62.8 -> 61.9 ms, in-process A/B on Zen 5).
// out[j] = sum over p < parts of partial[p*ld + j] for j < width (overwrite).
template <typename T>
void sum_partials(int parts, int64_t width, const T* partial, int64_t ld, T* out) {
  std::copy(partial, partial + width, out);
  for (int p = 1; p < parts; ++p)
    for (int64_t j = 0; j < width; ++j) out[j] += partial[p * ld + j];
}

// The products after the time loop, all overwritten except dx with dx_accumulate: dW_ih =
// dG_ih^T x (G x I), dW_hh = dG_hh^T h_prev (G x H) and, when dx is not null, dx = dG_ih W_ih
// (T*N x I), over K = T*N rows (dx: K = G). With a team of two and I, H within 2x of each other
// they run side by side as single-threaded GEMMs, each thread one weight gradient and half of
// dx's rows (no shared panels, no barriers; measured on Zen 5, fwd+bwd in-process A/B: LSTM
// T32 N64 I=H=512 60.1 -> 59.4 ms, T64 N32 I=H=256 16.7 -> 16.4 ms with the weight gradients,
// then 57.0 -> 56.7 and 15.7 -> 15.5 ms with dx as well); otherwise one after the other on the
// whole team.
template <typename T>
void backward_products(int64_t G, int64_t I, int64_t H, int64_t TN, const T* dg_ih, const T* x,
                       T* dw_ih, const T* dg_hh, const T* h_prev, T* dw_hh, const T* w_ih, T* dx,
                       bool dx_accumulate) {
  const T bx = dx_accumulate ? T(1) : T(0);
  auto ih = [&] { gemm<T>(true, false, G, I, TN, T(1), dg_ih, G, x, I, T(0), dw_ih, I); };
  auto hh = [&] { gemm<T>(true, false, G, H, TN, T(1), dg_hh, G, h_prev, H, T(0), dw_hh, H); };
  auto dx_rows = [&](int64_t r0, int64_t r1) {  // rows [r0, r1) of dx
    if (dx != nullptr && r1 > r0)
      gemm<T>(false, false, r1 - r0, I, G, T(1), dg_ih + r0 * G, G, w_ih, I, bx, dx + r0 * I, I);
  };
#ifdef _OPENMP
  if (get_num_threads() == 2 && !omp_in_parallel() && std::min(I, H) * 2 >= std::max(I, H)) {
    bool failed = false;  // bad_alloc in a section: carried out of the region, rethrown
#pragma omp parallel sections num_threads(2) reduction(|| : failed)
    {
#pragma omp section
      try {
        ih();
        dx_rows(0, TN / 2);
      } catch (...) {
        failed = true;
      }
#pragma omp section
      try {
        hh();
        dx_rows(TN / 2, TN);
      } catch (...) {
        failed = true;
      }
    }
    if (failed) throw std::bad_alloc();
    return;
  }
#endif
  ih();
  hh();
  dx_rows(0, TN);
}

// ---- the recurrent GEMM ----------------------------------------------------------
// Every step multiplies a few rows (the batch) by the same weight matrix, so the
// weights are packed ONCE per layer call into the GEMM microkernel's B layout
// (cpu/isa/gemm_kernels.h) and every step only packs its small A (the rows) and
// runs the microkernels: C[rows, cols] += A[rows, K] * op(B)[K, cols], always
// accumulating. The team splits the batch rows (whole MR-row blocks), so each
// thread's step depends only on its own rows of the previous step: the time loop
// runs inside one parallel region with no barrier.
using gemm_detail::KernelDesc;
using gemm_detail::pack_panel;

// op(B) (K x nseg*W) packed as nseg segments of ceil(W/NR) micro-panels of K x NR
// each; a segment's last panel is zero-padded, so the columns of segment q are
// q*W .. q*W + W - 1 of C (LSTM/GRU gates: one segment per gate).
template <typename T>
struct PackedB {
  int64_t K, W, nseg, npanels;
  T* data;
  const T* panel(int64_t q, int64_t p, int nr) const { return data + (q * npanels + p) * K * nr; }
  static int64_t elems(int64_t K, int64_t W, int64_t nseg, int nr) {
    return nseg * ((W + nr - 1) / nr) * K * nr;
  }
};

// Packs micro-panels [p0, p1) (counted over all segments) of op(B), where
// op(B)(k, j) = B[j*ldb + k] if transB (W_hh^T in forward) else B[k*ldb + j].
template <typename T>
void pack_b_panels(const KernelDesc<T>& d, const PackedB<T>& pb, const T* B, int64_t ldb,
                   bool transB, int64_t p0, int64_t p1) {
  for (int64_t s = p0; s < p1; ++s) {
    const int64_t q = s / pb.npanels, p = s % pb.npanels;
    const int64_t j0 = q * pb.W + p * d.nr;  // first column of op(B)
    const int w = static_cast<int>(std::min<int64_t>(d.nr, pb.W - p * d.nr));
    const T* src = transB ? B + j0 * ldb : B + j0;
    pack_panel(d, false, pb.K, w, src, ldb, !transB, const_cast<T*>(pb.panel(q, p, d.nr)));
  }
}

// A step's micro-panels run the whole depth K in one microkernel call (up to this
// many), not the GEMM's L1-sized kc = 256 slices: the thread's few row blocks then
// reuse each B micro-panel from L2, streamed from L3 once, and each C tile is
// stored once. Measured on Zen 5 (2 threads, in-process A/B), LSTM layer forward
// T32 N64 I=H=512 (K = 1024): 21.9 -> 20.1 ms; T64 N32 I=H=256: 5.11 -> 4.85 ms;
// T32 N64 I=H=1024 (K = 2048): 108.9 -> 97.3 ms, and its fwd+bwd (whose dh steps
// have K = 4H = 4096): 292 -> 272 ms. Beyond 4096 it is not measured.
constexpr int64_t kStepKcMax = 4096;

// C[r, :] (+)= [A1[r, :] | A2[r, :]] * op(B) for the rows of row blocks [rb0, rb1)
// (of MR rows; rows >= M do not exist): A1 has K1 columns (may be 0), A2 the other
// pb.K - K1. C is accumulated into, or overwritten when !accumulate. apack holds
// ceil(M/MR)*MR*pb.K elements, edge MR*NR per row block; both are indexed by row
// block, so threads with disjoint row blocks share them. a1_only (K1 >= 1): A2 is zero
// and left out, only the first K1 rows of op(B) are multiplied.
template <typename T>
void step_gemm(const KernelDesc<T>& d, const PackedB<T>& pb, const T* A1, int64_t lda1, int64_t K1,
               const T* A2, int64_t lda2, int64_t M, int64_t rb0, int64_t rb1, T* C, int64_t ldc,
               bool accumulate, T* apack, T* edge, bool a1_only = false) {
  const int64_t KP = pb.K, K = a1_only ? K1 : pb.K, MR = d.mr, NR = d.nr;
  for (int64_t rb = rb0; rb < rb1; ++rb) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, M - rb * MR));
    if (K1 > 0)
      pack_panel(d, true, K1, rows, A1 + rb * MR * lda1, lda1, false, apack + rb * MR * KP);
    if (!a1_only)
      pack_panel(d, true, K - K1, rows, A2 + rb * MR * lda2, lda2, false,
                 apack + rb * MR * KP + K1 * MR);
  }
  const int64_t kc_max = std::min<int64_t>(K, kStepKcMax);
  for (int64_t q = 0; q < pb.nseg; ++q) {
    for (int64_t p = 0; p < pb.npanels; ++p) {
      const int cols = static_cast<int>(std::min<int64_t>(NR, pb.W - p * NR));
      const int64_t c0 = q * pb.W + p * NR;
      const T* bp = pb.panel(q, p, d.nr);
      for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, K - k0);
        const T beta = k0 > 0 || accumulate ? T(1) : T(0);
        for (int64_t rb = rb0; rb < rb1; ++rb) {
          const int rows = static_cast<int>(std::min<int64_t>(MR, M - rb * MR));
          const T* ap = apack + rb * MR * KP + k0 * MR;
          if (rows == MR && cols == NR) {
            d.kernel(kc, ap, bp + k0 * NR, C + rb * MR * ldc + c0, ldc, T(1), beta);
          } else {
            d.kernel(kc, ap, bp + k0 * NR, edge + rb * MR * NR, NR, T(1), k0 == 0 ? T(0) : T(1));
          }
        }
      }
      for (int64_t rb = rb0; rb < rb1; ++rb) {  // merge the edge tiles
        const int rows = static_cast<int>(std::min<int64_t>(MR, M - rb * MR));
        if (rows == MR && cols == NR) continue;
        for (int i = 0; i < rows; ++i) {
          T* crow = C + (rb * MR + i) * ldc + c0;
          const T* erow = edge + rb * MR * NR + i * NR;
          for (int x = 0; x < cols; ++x) crow[x] = (accumulate ? crow[x] : T(0)) + erow[x];
        }
      }
    }
  }
}

// The team of a time loop over N rows: whole row blocks per thread.
struct Team {
  int64_t nrb;  // row blocks
  int nt;       // threads
  Team(int64_t N, int64_t mr, int64_t H) {
    nrb = (N + mr - 1) / mr;
    const int want = get_num_threads();
    nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, nrb)));
    if (N * H < kParallelMinUnits / 4) nt = 1;  // too small to pay for a team
  }
};

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Whether the n values at a are all zero (NaN is not): a zero initial state (hx=None) makes
// the first step's h_prev W_hh^T zero, and it is left out (see lstm.h).
template <typename T>
bool all_zero(const T* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (a[i] != T(0)) return false;
  return true;
}

// Row arithmetic of RnnShape (see lstm.h).
struct Rows {
  const RnnShape& s;
  int64_t first(int64_t t) const { return s.batch_first ? t : t * s.N; }  // row(t, 0)
  int64_t stride() const { return s.batch_first ? s.T : 1; }              // row(t, n+1) - row(t, n)
  int64_t step(int64_t k) const { return s.reverse ? s.T - 1 - k : k; }   // t of the k-th step
  bool active(int64_t t, int64_t n) const { return !s.lengths || t < s.lengths[n]; }
};

template <typename T>
void copy_rows(int64_t N, int64_t H, const T* src, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t n = 0; n < N; ++n) std::memcpy(dst + n * ldd, src + n * lds, H * sizeof(T));
}

}  // namespace

// ================================================================ LSTM
// With T > 1 each time loop runs in one parallel region on the recurrent GEMM
// above (weights packed once; see cpu/lstm.h for the order of the products); with
// T == 1 (a cell) there is nothing to amortize the packing over, so the step is
// ordinary GEMMs and a pointwise pass.

namespace {

// Workspace slots of the recurrent GEMM: packed B, packed A rows, edge tiles.
template <typename T>
struct RecurrentSlots {
  int b = -1, a = -1, e = -1;
  void want(Carver<T>& ws, const KernelDesc<T>& d, int64_t N, int64_t K, int64_t W, int64_t nseg) {
    const int64_t nrb = (N + d.mr - 1) / d.mr;
    b = ws.want(PackedB<T>::elems(K, W, nseg, d.nr));
    a = ws.want(nrb * d.mr * K);
    e = ws.want(nrb * d.mr * d.nr);
  }
};

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Runs body(n0, n1, rb0, rb1) once per thread of a team over the row blocks of
// N rows, after the team packed op(B) into pb.
template <typename T, class Body>
void run_team(const Team& team, const KernelDesc<T>& d, const PackedB<T>& pb, const T* B,
              int64_t ldb, bool transB, int64_t N, const Body& body) {
#pragma omp parallel num_threads(team.nt)
  {
    const int tid = thread_id(), nth = team_size();
    const int64_t panels = pb.nseg * pb.npanels;
    pack_b_panels(d, pb, B, ldb, transB, panels * tid / nth, panels * (tid + 1) / nth);
#pragma omp barrier
    const int64_t rb0 = team.nrb * tid / nth, rb1 = team.nrb * (tid + 1) / nth;
    body(std::min(N, rb0 * d.mr), std::min(N, rb1 * d.mr), rb0, rb1);
  }
}

}  // namespace

template <typename T>
void lstm_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                        const T* b_hh, const T* h0, const T* c0, T* y, int64_t ldy, T* h_n, T* c_n,
                        const LstmSaved<T>& saved) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N, I = s.I;
  if (N == 0) return;
  const RnnKernels<T> K = select_kernels<T>();
  const KernelDesc<T> d = gemm_detail::active_kernel<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldh = rs * H;
  const bool team_loop = s.T > 1;

  // Inference keeps only one step's gates (N x 4H, stays in cache); c and h of
  // every step are kept either way (the state is carried through them).
  const bool own = !saved.gates || !saved.c || !saved.h_prev;
  const bool has_bias = b_ih || b_hh;
  Carver<T> ws;
  const int sb = has_bias ? ws.want(G) : -1;
  const int sg = own ? ws.want((team_loop ? N : TN) * G) : -1;
  const int sc = own ? ws.want(TN * H) : -1, sh = own ? ws.want(TN * H) : -1;
  RecurrentSlots<T> rsl;
  if (team_loop) rsl.want(ws, d, N, I + H, H, 4);
  ws.allocate();
  T* gates = own ? ws.take(sg) : saved.gates;
  T* cs = own ? ws.take(sc) : saved.c;
  T* hs = own ? ws.take(sh) : saved.h_prev;
  T* bias = nullptr;
  if (has_bias) {
    bias = ws.take(sb);
    for (int64_t j = 0; j < G; ++j) bias[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh ? b_hh[j] : T(0));
  }
  copy_rows(N, H, h0, H, hs + R.first(R.step(0)) * H, ldh);
  const bool h0_zero = I > 0 && all_zero(h0, N * H);  // the first step skips h_prev W_hh^T

  // Step k, row n, whose gates g (row stride ldg) hold x W_ih^T + h_prev W_hh^T.
  auto row = [&](int64_t k, int64_t n, T* g, int64_t ldg) {
    const int64_t t = R.step(k);
    const T* hp_t = hs + R.first(t) * H;
    T* c_t = cs + R.first(t) * H;
    const T* cp = k == 0 ? c0 : cs + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    T* yrow = y ? y + (R.first(t) + n * rs) * ldy : nullptr;
    if (R.active(t, n)) {
      K.lstm_fwd(H, g + n * ldg, bias, cp + n * ldcp, c_t + n * ldh, hnext + n * ldhn, yrow);
    } else {  // carry the state, output 0
      std::memcpy(c_t + n * ldh, cp + n * ldcp, H * sizeof(T));
      std::memcpy(hnext + n * ldhn, hp_t + n * ldh, H * sizeof(T));
      if (yrow) std::memset(yrow, 0, H * sizeof(T));
    }
  };
  if (team_loop) {
    // One GEMM per step over [x_t | h_prev] (K = I + H) with [W_ih | W_hh] packed once:
    // the input projection is done step by step, so gates never leave the cache.
    const Team team(N, d.mr, H);
    const PackedB<T> pb{I + H, H, 4, (H + d.nr - 1) / d.nr, ws.take(rsl.b)};
    T *apack = ws.take(rsl.a), *edge = ws.take(rsl.e);
#pragma omp parallel num_threads(team.nt)
    {
      const int tid = thread_id(), nth = team_size();
      const int64_t panels = pb.nseg * pb.npanels;
      for (int64_t sp = panels * tid / nth; sp < panels * (tid + 1) / nth; ++sp) {
        const int64_t q = sp / pb.npanels, p = sp % pb.npanels;
        const int64_t j0 = q * H + p * d.nr;  // first gate column of the panel
        const int w = static_cast<int>(std::min<int64_t>(d.nr, H - p * d.nr));
        T* dst = const_cast<T*>(pb.panel(q, p, d.nr));
        if (I > 0) pack_panel(d, false, I, w, w_ih + j0 * I, I, false, dst);
        pack_panel(d, false, H, w, w_hh + j0 * H, H, false, dst + I * d.nr);
      }
#pragma omp barrier
      const int64_t rb0 = team.nrb * tid / nth, rb1 = team.nrb * (tid + 1) / nth;
      const int64_t n0 = std::min(N, rb0 * d.mr), n1 = std::min(N, rb1 * d.mr);
      for (int64_t k = 0; k < s.T; ++k) {
        const int64_t t = R.step(k);
        T* g = own ? gates : gates + R.first(t) * G;
        const int64_t ldg = own ? G : rs * G;
        step_gemm(d, pb, x + R.first(t) * I, rs * I, I, hs + R.first(t) * H, ldh, N, rb0, rb1, g,
                  ldg, false, apack, edge, k == 0 && h0_zero);
        for (int64_t n = n0; n < n1; ++n) row(k, n, g, ldg);
      }
    }
  } else {  // one step (a cell): the two products as ordinary GEMMs
    const int64_t ldg = rs * G;
    T* g = gates + R.first(0) * G;
    gemm<T>(false, true, N, G, I, T(1), x + R.first(0) * I, rs * I, w_ih, I, T(0), g, ldg);
    if (!h0_zero)
      gemm<T>(false, true, N, G, H, T(1), hs + R.first(0) * H, ldh, w_hh, H, T(1), g, ldg);
    for_rows(N, H, [&](int64_t n) { row(0, n, g, ldg); });
  }
  copy_rows(N, H, cs + R.first(R.step(s.T - 1)) * H, ldh, c_n, H);
}

template <typename T>
void lstm_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* c0,
                         const LstmSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n,
                         const T* dc_n, T* dx, bool dx_accumulate, T* dh0, T* dc0, T* dw_ih,
                         T* dw_hh, T* db) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N;
  const RnnKernels<T> K = select_kernels<T>();
  const KernelDesc<T> d = gemm_detail::active_kernel<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  const bool team_loop = s.T > 1 && N > 0;
  const Team team(N, d.mr, H);
  Carver<T> ws;
  const int sd = ws.want(TN * G);
  const int sp = team_loop && db ? ws.want(team.nrb * G) : -1;  // bias partial sums
  RecurrentSlots<T> rsl;
  if (team_loop) rsl.want(ws, d, N, G, H, 1);
  ws.allocate();
  T* dgates = ws.take(sd);
  T* dbp = sp >= 0 ? ws.take(sp) : nullptr;
  if (dbp) std::fill(dbp, dbp + team.nrb * G, T(0));

  // dh0 / dc0 carry the state gradients through the loop and end as dh0 / dc0.
  for (int64_t e = 0; e < N * H; ++e) {
    dh0[e] = dh_n ? dh_n[e] : T(0);
    dc0[e] = dc_n ? dc_n[e] : T(0);
  }
  auto row = [&](int64_t k, int64_t n, T* db_part) {
    const int64_t t = R.step(k);
    const T* g_t = saved.gates + R.first(t) * G;
    const T* c_t = saved.c + R.first(t) * H;
    const T* cp = k == 0 ? c0 : saved.c + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* dg_t = dgates + R.first(t) * G;
    if (R.active(t, n)) {
      const T* dyrow = dy ? dy + (R.first(t) + n * rs) * ldy : nullptr;
      K.lstm_bwd(H, g_t + n * ldg, c_t + n * ldh, cp + n * ldcp, dyrow, dh0 + n * H, dc0 + n * H,
                 dg_t + n * ldg, db_part ? db_part + n / d.mr * G : nullptr);
    } else {  // no gradient through an inactive step; dh, dc pass unchanged
      std::memset(dg_t + n * ldg, 0, G * sizeof(T));
    }
  };
  // lstm_bwd zeroes dh of the active rows, so dh += dgates W_hh makes it dh_prev.
  if (team_loop) {
    const PackedB<T> pb{G, H, 1, (H + d.nr - 1) / d.nr, ws.take(rsl.b)};
    T *apack = ws.take(rsl.a), *edge = ws.take(rsl.e);
    run_team(team, d, pb, w_hh, H, false, N, [&](int64_t n0, int64_t n1, int64_t rb0, int64_t rb1) {
      for (int64_t k = s.T - 1; k >= 0; --k) {
        for (int64_t n = n0; n < n1; ++n) row(k, n, dbp);
        step_gemm(d, pb, dgates, 0, 0, dgates + R.first(R.step(k)) * G, ldg, N, rb0, rb1, dh0, H,
                  true, apack, edge);
      }
    });
  } else if (N > 0) {
    for_rows(N, H, [&](int64_t n) { row(0, n, nullptr); });
    gemm<T>(false, false, N, H, G, T(1), dgates + R.first(0) * G, ldg, w_hh, H, T(1), dh0, H);
  }
  backward_products(G, s.I, H, TN, dgates, x, dw_ih, dgates, saved.h_prev, dw_hh, w_ih, dx,
                    dx_accumulate);
  if (dbp)
    sum_partials(team.nrb, G, dbp, G, db);
  else if (db)
    column_sums(TN, G, dgates, G, db);
}

// ================================================================ GRU

template <typename T>
void gru_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                       const T* b_hh, const T* h0, T* y, int64_t ldy, T* h_n,
                       const GruSaved<T>& saved) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  if (N == 0) return;
  const RnnKernels<T> K = select_kernels<T>();
  const KernelDesc<T> d = gemm_detail::active_kernel<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  const bool team_loop = s.T > 1;

  const bool own = !saved.gates || !saved.hn || !saved.h_prev;
  Carver<T> ws;
  const int sgh = ws.want(N * G);
  const int sg = own ? ws.want(TN * G) : -1, sn = own ? ws.want(TN * H) : -1,
            sh = own ? ws.want(TN * H) : -1;
  RecurrentSlots<T> rsl;
  if (team_loop) rsl.want(ws, d, N, H, H, 3);
  ws.allocate();
  T* gh = ws.take(sgh);
  T* gates = own ? ws.take(sg) : saved.gates;
  T* hn = own ? ws.take(sn) : saved.hn;
  T* hs = own ? ws.take(sh) : saved.h_prev;

  Epilogue<T> ep_i;
  if (b_ih) ep_i = {b_ih, BiasKind::PerCol, Act::None};
  gemm<T>(false, true, TN, G, s.I, T(1), x, s.I, w_ih, s.I, T(0), gates, G, ep_i);

  copy_rows(N, H, h0, H, hs + R.first(R.step(0)) * H, ldh);
  const bool h0_zero = all_zero(h0, N * H);       // the first step's gh is then b_hh alone
  auto fill_bias = [&](int64_t n0, int64_t n1) {  // gh rows = b_hh (the GEMM adds to it)
    for (int64_t n = n0; n < n1; ++n) {
      if (b_hh)
        std::memcpy(gh + n * G, b_hh, G * sizeof(T));
      else
        std::memset(gh + n * G, 0, G * sizeof(T));
    }
  };
  auto row = [&](int64_t k, int64_t n) {
    const int64_t t = R.step(k);
    T* g_t = gates + R.first(t) * G;
    const T* hp_t = hs + R.first(t) * H;
    T* hn_t = hn + R.first(t) * H;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    T* yrow = y ? y + (R.first(t) + n * rs) * ldy : nullptr;
    if (R.active(t, n)) {
      K.gru_fwd(H, g_t + n * ldg, gh + n * G, hp_t + n * ldh, hn_t + n * ldh, hnext + n * ldhn,
                yrow);
    } else {
      std::memcpy(hnext + n * ldhn, hp_t + n * ldh, H * sizeof(T));
      if (yrow) std::memset(yrow, 0, H * sizeof(T));
    }
  };
  if (team_loop) {
    const Team team(N, d.mr, H);
    const PackedB<T> pb{H, H, 3, (H + d.nr - 1) / d.nr, ws.take(rsl.b)};
    T *apack = ws.take(rsl.a), *edge = ws.take(rsl.e);
    run_team(team, d, pb, w_hh, H, true, N, [&](int64_t n0, int64_t n1, int64_t rb0, int64_t rb1) {
      for (int64_t k = 0; k < s.T; ++k) {
        fill_bias(n0, n1);
        if (k > 0 || !h0_zero)
          step_gemm(d, pb, hs, 0, 0, hs + R.first(R.step(k)) * H, ldh, N, rb0, rb1, gh, G, true,
                    apack, edge);
        for (int64_t n = n0; n < n1; ++n) row(k, n);
      }
    });
  } else {
    Epilogue<T> ep_h;
    if (b_hh) ep_h = {b_hh, BiasKind::PerCol, Act::None};
    if (h0_zero)
      fill_bias(0, N);
    else
      gemm<T>(false, true, N, G, H, T(1), hs + R.first(0) * H, ldh, w_hh, H, T(0), gh, G, ep_h);
    for_rows(N, H, [&](int64_t n) { row(0, n); });
  }
}

template <typename T>
void gru_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                        const GruSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n, T* dx,
                        bool dx_accumulate, T* dh0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  const RnnKernels<T> K = select_kernels<T>();
  const KernelDesc<T> d = gemm_detail::active_kernel<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  const bool team_loop = s.T > 1 && N > 0;
  const Team team(N, d.mr, H);
  Carver<T> ws;
  const int si = ws.want(TN * G), sh = ws.want(TN * G);
  // bias partial sums: [db_ih | db_hh] per row block
  const int sp = team_loop && (db_ih || db_hh) ? ws.want(team.nrb * 2 * G) : -1;
  RecurrentSlots<T> rsl;
  if (team_loop) rsl.want(ws, d, N, G, H, 1);
  ws.allocate();
  T* dgi = ws.take(si);
  T* dgh = ws.take(sh);
  T* dbp = sp >= 0 ? ws.take(sp) : nullptr;
  if (dbp) std::fill(dbp, dbp + team.nrb * 2 * G, T(0));

  for (int64_t e = 0; e < N * H; ++e) dh0[e] = dh_n ? dh_n[e] : T(0);
  auto row = [&](int64_t k, int64_t n, T* db_part) {
    const int64_t t = R.step(k);
    const T* g_t = saved.gates + R.first(t) * G;
    const T* hn_t = saved.hn + R.first(t) * H;
    const T* hp_t = saved.h_prev + R.first(t) * H;
    T* dgi_t = dgi + R.first(t) * G;
    T* dgh_t = dgh + R.first(t) * G;
    if (R.active(t, n)) {
      const T* dyrow = dy ? dy + (R.first(t) + n * rs) * ldy : nullptr;
      T* part = db_part ? db_part + n / d.mr * 2 * G : nullptr;  // [db_ih | db_hh] of the block
      T* dbi = part && db_ih ? part : nullptr;
      T* dbh = part && db_hh ? part + G : nullptr;
      K.gru_bwd(H, g_t + n * ldg, hn_t + n * ldh, hp_t + n * ldh, dyrow, dh0 + n * H,
                dgi_t + n * ldg, dgh_t + n * ldg, dbi, dbh);
    } else {
      std::memset(dgi_t + n * ldg, 0, G * sizeof(T));
      std::memset(dgh_t + n * ldg, 0, G * sizeof(T));
    }
  };
  // gru_bwd leaves dh*z in dh0 for the active rows; the GEMM adds dgh W_hh.
  if (team_loop) {
    const PackedB<T> pb{G, H, 1, (H + d.nr - 1) / d.nr, ws.take(rsl.b)};
    T *apack = ws.take(rsl.a), *edge = ws.take(rsl.e);
    run_team(team, d, pb, w_hh, H, false, N, [&](int64_t n0, int64_t n1, int64_t rb0, int64_t rb1) {
      for (int64_t k = s.T - 1; k >= 0; --k) {
        for (int64_t n = n0; n < n1; ++n) row(k, n, dbp);
        step_gemm(d, pb, dgh, 0, 0, dgh + R.first(R.step(k)) * G, ldg, N, rb0, rb1, dh0, H, true,
                  apack, edge);
      }
    });
  } else if (N > 0) {
    for_rows(N, H, [&](int64_t n) { row(0, n, nullptr); });
    gemm<T>(false, false, N, H, G, T(1), dgh + R.first(0) * G, ldg, w_hh, H, T(1), dh0, H);
  }
  backward_products(G, s.I, H, TN, dgi, x, dw_ih, dgh, saved.h_prev, dw_hh, w_ih, dx,
                    dx_accumulate);
  if (dbp) {
    if (db_ih) sum_partials(team.nrb, G, dbp, 2 * G, db_ih);
    if (db_hh) sum_partials(team.nrb, G, dbp + G, 2 * G, db_hh);
  } else {
    if (db_ih) column_sums(TN, G, dgi, G, db_ih);
    if (db_hh) column_sums(TN, G, dgh, G, db_hh);
  }
}

template <typename T>
void rnn_math(int fn, int64_t n, const T* x, T* y) {
  select_kernels<T>().math(fn, n, x, y);
}

#define PE_INSTANTIATE(T)                                                                          \
  template void lstm_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,     \
                                      const T*, const T*, const T*, T*, int64_t, T*, T*,           \
                                      const LstmSaved<T>&);                                        \
  template void lstm_layer_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,    \
                                       const LstmSaved<T>&, const T*, int64_t, const T*, const T*, \
                                       T*, bool, T*, T*, T*, T*, T*);                              \
  template void gru_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,      \
                                     const T*, const T*, T*, int64_t, T*, const GruSaved<T>&);     \
  template void gru_layer_backward<T>(const RnnShape&, const T*, const T*, const T*,               \
                                      const GruSaved<T>&, const T*, int64_t, const T*, T*, bool,   \
                                      T*, T*, T*, T*, T*);                                         \
  template void rnn_math<T>(int, int64_t, const T*, T*);
PE_INSTANTIATE(float)
PE_INSTANTIATE(double)
#undef PE_INSTANTIATE

}  // namespace pyengine::cpu
