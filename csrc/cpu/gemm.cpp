// CPU GEMM driver: the ISA-independent part of a BLIS-shaped GEMM.
//
// Five loops around a microkernel (cpu/isa/gemm_*.cpp):
//   jc: N in NC-wide panels
//     pc: K in KC-deep slices  -> pack op(B)[pc:pc+kc, jc:jc+nc] (shared by the team)
//       ic: this thread's rows in MC-tall blocks -> pack op(A)[ic:ic+mc, pc:pc+kc]
//         jr: NR-wide micro-panels of the B panel (one stays in L1 ...)
//           ir: MR-tall micro-panels of the A block (... while these stream from L2)
//             microkernel: MR x NR tile of C in registers
// Transposes are absorbed by the packing routines (no transposed copies).
// Edges: packed panels are zero-padded to MR / NR, and a partial C tile is
// computed into a scratch tile and merged, so the microkernels never branch.
// The epilogue (bias, activation) runs on each tile right after its last KC
// slice, while the tile is still in L1.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "core/workspace.h"
#include "cpu/isa/gemm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {

// ---- kernel selection (declared in cpu/isa/gemm_kernels.h) -------------------------
template <>
gemm_detail::KernelDesc<float> gemm_detail::active_kernel<float>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return avx512::kernel_f32();
    case Isa::AVX2: return avx2::kernel_f32();
#endif
    default: return generic::kernel_f32();
  }
}

template <>
gemm_detail::KernelDesc<double> gemm_detail::active_kernel<double>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return avx512::kernel_f64();
    case Isa::AVX2: return avx2::kernel_f64();
#endif
    default: return generic::kernel_f64();
  }
}

// One micro-panel with the ISA's packer, or portably where it brings none (declared in
// cpu/isa/gemm_kernels.h).
template <typename T>
void gemm_detail::pack_panel(const KernelDesc<T>& d, bool is_a, int64_t kc, int w, const T* src,
                             int64_t ld, bool x_contiguous, T* dst) {
  const PackPanel<T> fn = is_a ? d.pack_a : d.pack_b;
  if (fn != nullptr) return fn(kc, w, src, ld, x_contiguous, dst);
  const int W = is_a ? d.mr : d.nr;
  for (int64_t k = 0; k < kc; ++k) {
    T* o = dst + k * W;
    for (int x = 0; x < w; ++x) o[x] = x_contiguous ? src[k * ld + x] : src[x * ld + k];
    for (int x = w; x < W; ++x) o[x] = T(0);
  }
}
template void gemm_detail::pack_panel<float>(const KernelDesc<float>&, bool, int64_t, int,
                                             const float*, int64_t, bool, float*);
template void gemm_detail::pack_panel<double>(const KernelDesc<double>&, bool, int64_t, int,
                                              const double*, int64_t, bool, double*);

namespace {

using gemm_detail::KernelDesc;

// Below this many multiply-adds (M*N*K) a single thread is faster than forking
// a team, sharing the packed B panel and meeting at barriers. Measured on Zen 5
// (2 cores): 2 threads start winning between 96^3 and 128^3.
constexpr double kParallelMinWork = 96.0 * 96.0 * 96.0;
// Strided-batched: when each matrix is at most this big and there are enough
// matrices, threads take whole matrices (no barriers, no shared panels).
constexpr double kBatchPerThreadMaxWork = 256.0 * 256.0 * 256.0;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- workspace ---------------------------------------------------------------
// A per-thread, 64-byte aligned scratch buffer that grows and is reused, so the
// hot path does not allocate (fresh pages are expensive on our VMs).
using Scratch = ::pyengine::Workspace;  // csrc/core/workspace.h

thread_local Scratch t_pack_a;  // this thread's MC x KC block of A
thread_local Scratch t_pack_b;  // the KC x NC panel of B, owned by the calling thread

// ---- problem -----------------------------------------------------------------------
template <typename T>
struct Problem {
  bool transA, transB;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
  Epilogue<T> ep;
};

// ---- epilogue ----------------------------------------------------------------------
template <typename T>
T gelu(T x) {
  constexpr T kInvSqrt2 = T(0.70710678118654752440);
  return T(0.5) * x * (T(1) + std::erf(x * kInvSqrt2));
}

// Adds bias and applies the activation to the rows x cols block at c, whose
// top-left element is C(i0, j0). ReLU keeps NaN (x < 0 is false for NaN), as
// PyTorch does.
template <typename T>
void apply_epilogue(const Epilogue<T>& ep, T* c, int64_t ldc, int64_t rows, int64_t cols,
                    int64_t i0, int64_t j0) {
  if (ep.bias != nullptr && ep.bias_kind == BiasKind::PerRow) {
    for (int64_t i = 0; i < rows; ++i) {
      const T b = ep.bias[i0 + i];
      for (int64_t j = 0; j < cols; ++j) c[i * ldc + j] += b;
    }
  } else if (ep.bias != nullptr && ep.bias_kind == BiasKind::PerCol) {
    const T* b = ep.bias + j0;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) c[i * ldc + j] += b[j];
  }
  if (ep.act == Act::ReLU) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        T& x = c[i * ldc + j];
        x = x < T(0) ? T(0) : x;
      }
  } else if (ep.act == Act::GELU) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) c[i * ldc + j] = gelu(c[i * ldc + j]);
  }
}

bool has_epilogue_work(BiasKind bias_kind, const void* bias, Act act) {
  return (bias != nullptr && bias_kind != BiasKind::None) || act != Act::None;
}

// K == 0 or alpha == 0: C = beta*C + bias, then act; A and B are not read (as
// BLAS does for alpha == 0, so NaN in A or B does not reach C).
template <typename T>
void scale_only(const Problem<T>& p) {
  for (int64_t i = 0; i < p.M; ++i) {
    T* c = p.C + i * p.ldc;
    if (p.beta == T(0)) {
      std::fill(c, c + p.N, T(0));
    } else if (p.beta != T(1)) {
      for (int64_t j = 0; j < p.N; ++j) c[j] *= p.beta;
    }
  }
  if (has_epilogue_work(p.ep.bias_kind, p.ep.bias, p.ep.act))
    apply_epilogue(p.ep, p.C, p.ldc, p.M, p.N, 0, 0);
}

// ---- packing -----------------------------------------------------------------------
// Packs op(A)[i0:i0+mc, p0:p0+kc] as ceil(mc/MR) micro-panels of kc x MR.
template <typename T>
void pack_a(const Problem<T>& p, const KernelDesc<T>& d, int64_t i0, int64_t mc, int64_t p0,
            int64_t kc, T* dst) {
  // op(A)(i, k) is A[i*lda + k], or A[k*lda + i] if transA.
  const T* base = p.transA ? p.A + p0 * p.lda + i0 : p.A + i0 * p.lda + p0;
  const int64_t step = p.transA ? 1 : p.lda;  // from row i to row i+1
  for (int64_t ir = 0; ir < mc; ir += d.mr) {
    const int mr = static_cast<int>(std::min<int64_t>(d.mr, mc - ir));
    const T* src = base + ir * step;
    gemm_detail::pack_panel(d, true, kc, mr, src, p.lda, p.transA, dst + ir * kc);
  }
}

// Packs micro-panels [s0, s1) of op(B)[p0:p0+kc, j0:j0+nc], each kc x NR, at
// dst + s*NR*kc.
template <typename T>
void pack_b(const Problem<T>& p, const KernelDesc<T>& d, int64_t p0, int64_t kc, int64_t j0,
            int64_t nc, int64_t s0, int64_t s1, T* dst) {
  // op(B)(k, j) is B[k*ldb + j], or B[j*ldb + k] if transB.
  const T* base = p.transB ? p.B + j0 * p.ldb + p0 : p.B + p0 * p.ldb + j0;
  const int64_t step = p.transB ? p.ldb : 1;  // from column j to column j+1
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t jr = s * d.nr;
    const int nr = static_cast<int>(std::min<int64_t>(d.nr, nc - jr));
    const T* src = base + jr * step;
    gemm_detail::pack_panel(d, false, kc, nr, src, p.ldb, !p.transB, dst + jr * kc);
  }
}

// ---- macrokernel -------------------------------------------------------------------
// One packed A block (rows ic..ic+mc) times B micro-panels [s0, s1) of the
// packed panel at column jc. `last` marks the final KC slice: the tiles are
// then complete and get the epilogue.
template <typename T>
void macrokernel(const Problem<T>& p, const KernelDesc<T>& d, const T* apack, const T* bpack,
                 int64_t ic, int64_t mc, int64_t jc, int64_t nc, int64_t s0, int64_t s1, int64_t kc,
                 T beta, bool last) {
  const int MR = d.mr, NR = d.nr;
  const bool epilogue = last && has_epilogue_work(p.ep.bias_kind, p.ep.bias, p.ep.act);
  alignas(64) T tile[gemm_detail::kMaxTileElems];
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t jr = s * NR;
    const int64_t nr = std::min<int64_t>(NR, nc - jr);
    const T* bp = bpack + jr * kc;
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = std::min<int64_t>(MR, mc - ir);
      const T* ap = apack + ir * kc;
      T* c = p.C + (ic + ir) * p.ldc + (jc + jr);
      if (mr == MR && nr == NR) {
        d.kernel(kc, ap, bp, c, p.ldc, p.alpha, beta);
      } else {
        // Partial tile: compute it into scratch (only the first half when the rest is
        // padding and the ISA has a half-width kernel), merge the valid part.
        const bool half = d.kernel_half != nullptr && 2 * nr <= NR;
        (half ? d.kernel_half : d.kernel)(kc, ap, bp, tile, NR, p.alpha, T(0));
        for (int64_t i = 0; i < mr; ++i) {
          T* ci = c + i * p.ldc;
          const T* ti = tile + i * NR;
          if (beta == T(0)) {
            for (int64_t j = 0; j < nr; ++j) ci[j] = ti[j];
          } else {
            for (int64_t j = 0; j < nr; ++j) ci[j] = ti[j] + beta * ci[j];
          }
        }
      }
      if (epilogue) apply_epilogue(p.ep, c, p.ldc, mr, nr, ic + ir, jc + jr);
    }
  }
}

// ---- threading ---------------------------------------------------------------------
// Threads form a tm x tn grid over (row micro-panels, column micro-panels of an
// NC panel). The grid minimises the micro-tiles of the busiest thread. On a tie
// the rule depends on M:
//   M <= MC (one A block): columns. Each thread then packs its own B columns
//     and its own copy of the small A block, so the team shares nothing and
//     never meets at a barrier, and every B micro-panel brought into L1 serves
//     all M/MR row tiles instead of half of them (conv with 64 output channels,
//     LSTM steps, first layers).
//   M > MC: rows (threads share the packed B panel; each packs only its rows
//     of A, which is then the bigger operand).
struct Grid {
  int tm = 1, tn = 1;
};

template <typename T>
Grid choose_grid(const Problem<T>& p, const KernelDesc<T>& d, int nt) {
  const int64_t ms = ceil_div(p.M, d.mr);
  const int64_t ns = ceil_div(std::min<int64_t>(p.N, d.nc), d.nr);
  const bool prefer_cols = p.M <= d.mc;
  Grid best{nt, 1};
  int64_t best_cost = -1;
  for (int i = 0; i < nt; ++i) {
    const int tm = prefer_cols ? i + 1 : nt - i;  // preferred shape first: ties keep it
    if (nt % tm != 0) continue;
    const int tn = nt / tm;
    const int64_t cost = ceil_div(ms, tm) * ceil_div(ns, tn);  // tiles on the busiest thread
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  return best;
}

// Splits [0, n) into `parts` near-equal pieces; piece i is [lo, hi).
void split(int64_t n, int parts, int i, int64_t& lo, int64_t& hi) {
  lo = n * i / parts;
  hi = n * (i + 1) / parts;
}

void team_barrier(int nt) {
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp barrier
  }
#else
  (void)nt;
#endif
}

// A shared B panel (threads split rows) is packed for every K slice at once when it holds at
// most this many elements (8 MiB of float32, in L3): one barrier per panel instead of two per
// K slice, so a thread that finishes a slice early does not wait for the other. Measured on Zen
// 5, 2 threads, M=512 N=392 K=2048 (a 7x7 1x1 conv over 8 images): 376 -> 391 GFLOP/s while the
// VM ran both threads unevenly; no change (470-490) when both cores ran freely.
constexpr int64_t kWholePanelMax = int64_t(1) << 21;

template <typename T>
bool whole_panel(const Problem<T>& p, const KernelDesc<T>& d) {
  const int64_t ncp = ceil_div(std::min<int64_t>(d.nc, p.N), d.nr) * d.nr;
  return p.K > d.kc && ncp * p.K <= kWholePanelMax;
}

// The five loops for one member `tid` of a team of `nt` threads. Every member
// runs the same jc/pc iterations so the barriers match.
template <typename T>
void run_member(const Problem<T>& p, const KernelDesc<T>& d, T* bpack, T* apack, int tid, int nt) {
  const int MR = d.mr, NR = d.nr;
  const Grid g = choose_grid(p, d, nt);
  const int ti = tid / g.tn, tj = tid % g.tn;

  const int64_t kc_step = gemm_detail::slice_depth(p.K, d.kc);

  int64_t ms0, ms1;
  split(ceil_div(p.M, MR), g.tm, ti, ms0, ms1);
  const int64_t row0 = ms0 * MR, row1 = std::min(p.M, ms1 * MR);
  // MC blocks of near-equal height (multiple of MR) inside this thread's rows.
  const int64_t my_rows = std::max<int64_t>(row1 - row0, 0);
  const int64_t mc_step =
      my_rows == 0 ? MR : ceil_div(ceil_div(my_rows, ceil_div(my_rows, d.mc)), MR) * MR;

  for (int64_t jc = 0; jc < p.N; jc += d.nc) {
    const int64_t nc = std::min<int64_t>(d.nc, p.N - jc);
    const int64_t n_panels = ceil_div(nc, NR);
    int64_t cs0, cs1;  // this thread's B micro-panels for compute
    split(n_panels, g.tn, tj, cs0, cs1);
    // This thread's B micro-panels for packing: a share of the shared panel
    // when threads split rows (then they meet at barriers around each panel),
    // or exactly the micro-panels it computes on when tm == 1 (then `bpack` is
    // this thread's own buffer, see gemm_one: no barriers).
    const int sync = g.tm == 1 ? 1 : nt;
    int64_t ps0 = cs0, ps1 = cs1;
    if (sync > 1) split(n_panels, nt, tid, ps0, ps1);

    // whole: every K slice's panel packed up front, slice pc at bpack + pc * (its width)
    const bool whole = sync > 1 && whole_panel(p, d);
    const int64_t ncp = n_panels * NR;
    if (whole) {
      for (int64_t pc = 0; pc < p.K; pc += kc_step)
        pack_b(p, d, pc, std::min(kc_step, p.K - pc), jc, nc, ps0, ps1, bpack + pc * ncp);
      team_barrier(sync);  // every slice is packed
    }
    for (int64_t pc = 0; pc < p.K; pc += kc_step) {
      const int64_t kc = std::min(kc_step, p.K - pc);
      T* bp = whole ? bpack + pc * ncp : bpack;
      if (!whole) {
        pack_b(p, d, pc, kc, jc, nc, ps0, ps1, bp);
        team_barrier(sync);  // the whole panel is packed
      }
      const T beta = pc == 0 ? p.beta : T(1);
      const bool last = pc + kc >= p.K;
      for (int64_t ic = row0; ic < row1; ic += mc_step) {
        const int64_t mc = std::min(mc_step, row1 - ic);
        pack_a(p, d, ic, mc, pc, kc, apack);
        macrokernel(p, d, apack, bp, ic, mc, jc, nc, cs0, cs1, kc, beta, last);
      }
      if (!whole) team_barrier(sync);  // nobody still reads the panel before it is repacked
    }
    if (whole) team_barrier(sync);  // nobody still reads the panels before they are repacked
  }
}

template <typename T>
int64_t pack_a_elems(const Problem<T>& p, const KernelDesc<T>& d) {
  return static_cast<int64_t>(d.mc) * std::min<int64_t>(d.kc, p.K) + d.mr * d.kc;
}

// shared: the team's panel (every K slice of it when whole_panel), else one slice.
template <typename T>
int64_t pack_b_elems(const Problem<T>& p, const KernelDesc<T>& d, bool shared) {
  const int64_t nc = ceil_div(std::min<int64_t>(d.nc, p.N), d.nr) * d.nr;
  return nc * (shared && whole_panel(p, d) ? p.K : std::min<int64_t>(d.kc, p.K));
}

// How many threads pay off for this problem.
template <typename T>
int useful_threads(const Problem<T>& p, const KernelDesc<T>& d, int max_threads) {
#ifdef _OPENMP
  if (max_threads <= 1 || omp_in_parallel()) return 1;
  const double work =
      static_cast<double>(p.M) * static_cast<double>(p.N) * static_cast<double>(p.K);
  if (work < kParallelMinWork) return 1;
  const int64_t tiles = ceil_div(p.M, d.mr) * ceil_div(std::min<int64_t>(p.N, d.nc), d.nr);
  return static_cast<int>(std::min<int64_t>(max_threads, tiles));
#else
  (void)p;
  (void)d;
  (void)max_threads;
  return 1;
#endif
}

// One GEMM with at most `max_threads` threads.
template <typename T>
void gemm_one(const Problem<T>& p, const KernelDesc<T>& d, int max_threads) {
  if (p.M <= 0 || p.N <= 0) return;
  if (p.K <= 0 || p.alpha == T(0)) {
    scale_only(p);
    return;
  }
  const int nt = useful_threads(p, d, max_threads);
  T* bpack = t_pack_b.get<T>(pack_b_elems(p, d, nt > 1));
  if (nt == 1) {
    run_member(p, d, bpack, t_pack_a.get<T>(pack_a_elems(p, d)), 0, 1);
    return;
  }
#ifdef _OPENMP
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nt)
  {
    // The team may be smaller than asked (OpenMP limits); the grid follows it.
    const int team = omp_get_num_threads();
    // With a 1 x tn grid every thread packs its own B columns into its own
    // buffer (no shared panel, no barriers); otherwise the caller's is shared.
    const bool own_b = choose_grid(p, d, team).tm == 1;
    T* apack = nullptr;
    T* mine = bpack;
    try {
      apack = t_pack_a.get<T>(pack_a_elems(p, d));
      if (own_b) mine = t_pack_b.get<T>(pack_b_elems(p, d, false));
    } catch (...) {
      failed.store(true);
    }
#pragma omp barrier
    if (!failed.load()) run_member(p, d, mine, apack, omp_get_thread_num(), team);
  }
  if (failed.load()) throw std::bad_alloc();
#endif
}

}  // namespace

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>& ep) {
  const Problem<T> p{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep};
  gemm_one(p, gemm_detail::active_kernel<T>(), get_num_threads());
}

template <typename T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>& ep) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const KernelDesc<T> d = gemm_detail::active_kernel<T>();
  auto problem = [&](int64_t b) {
    return Problem<T>{
        transA, transB,          M,   N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb,
        beta,   C + b * strideC, ldc, ep};
  };
  const int max_threads = get_num_threads();
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
#ifdef _OPENMP
  const bool per_matrix =
      max_threads > 1 && batch > 1 && !omp_in_parallel() &&
      (batch >= max_threads ? work <= kBatchPerThreadMaxWork : work < kParallelMinWork);
  if (per_matrix) {
    // Threads take whole matrices. Exceptions (only bad_alloc) cannot leave an
    // OpenMP region, so the first one is carried out and rethrown.
    std::atomic<bool> failed{false};
    const int nt = static_cast<int>(std::min<int64_t>(max_threads, batch));
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        gemm_one(problem(b), d, 1);
      } catch (...) {
        failed.store(true);
      }
    }
    if (failed.load()) throw std::bad_alloc();
    return;
  }
#else
  (void)work;
#endif
  for (int64_t b = 0; b < batch; ++b) gemm_one(problem(b), d, max_threads);
}

#define PYENGINE_INSTANTIATE_GEMM(T)                                                           \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t, const Epilogue<T>&);                          \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*,    \
                                        int64_t, int64_t, const T*, int64_t, int64_t, T, T*,   \
                                        int64_t, int64_t, int64_t, const Epilogue<T>&);
PYENGINE_INSTANTIATE_GEMM(float)
PYENGINE_INSTANTIATE_GEMM(double)
#undef PYENGINE_INSTANTIATE_GEMM

}  // namespace pyengine::cpu
