// Internal: the ISA-specific part of the CPU GEMM (cpu/gemm.cpp is the rest).
//
// Each ISA file (gemm_generic.cpp, gemm_avx2.cpp, gemm_avx512.cpp) hands out
// one descriptor per dtype: register tile MR x NR, cache blocks MC/KC/NC and
// the microkernel. Everything else in those files lives in an anonymous
// namespace, so no inline or template code compiled with wide-ISA flags can be
// chosen by the linker for a baseline caller (ODR hazard). This header holds
// only plain data types and the getter declarations for that reason.
#pragma once
#include <cstdint>

namespace pyengine::cpu::gemm_detail {

// Microkernel contract (row-major C, like cpu/gemm.h):
//   a: packed A micro-panel, K x MR: a[k*MR + i] = op(A)(i, k); only
//      broadcast from, so no alignment beyond the element's is promised.
//   b: packed B micro-panel, K x NR: b[k*NR + j] = op(B)(k, j), aligned to
//      min(64, NR*sizeof(T)) bytes, so vector loads of B may be aligned.
//   c: the full MR x NR tile, c[i*ldc + j]; any alignment.
//   Computes c = alpha * (a * b) + beta * c for the whole tile; beta == 0 means
//   c is not read (NaN there does not propagate). K >= 1.
// Partial tiles at the edges are the caller's business (it zero-pads the
// panels and passes a scratch tile), so kernels stay branch-free.
template <typename T>
using MicroKernel = void (*)(int64_t K, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);

// Optional packing routine contract: packs one micro-panel of width W (W = MR
// for A, NR for B) and depth kc: dst[k*W + x] = S(x, k) for x < w, and 0 for
// w <= x < W, where S(x, k) = src[k*ld + x] if x_contiguous, else
// src[x*ld + k]. dst is aligned to min(64, W*sizeof(T)) bytes (panels start
// at multiples of W*kc elements in a 64-byte aligned buffer). A null pointer
// means the driver's portable routine is used.
//   op(A) panel: x = row i;    x_contiguous = transA.
//   op(B) panel: x = column j; x_contiguous = !transB.
template <typename T>
using PackPanel = void (*)(int64_t kc, int w, const T* src, int64_t ld, bool x_contiguous, T* dst);

template <typename T>
struct KernelDesc {
  int mr;  // rows of the register tile (broadcast from packed A)
  int nr;  // columns of the register tile (vector loads from packed B)
  int mc;  // rows of the packed A block (kept in L2), multiple of mr
  int kc;  // depth of one packed panel (B micro-panel kc x nr kept in L1)
  int nc;  // columns of the packed B panel (kept in L3), multiple of nr
  MicroKernel<T> kernel;
  PackPanel<T> pack_a = nullptr;  // width mr
  PackPanel<T> pack_b = nullptr;  // width nr
  // Optional edge kernel: the first nr/2 columns of a packed B micro-panel (rows nr apart)
  // into an mr x nr/2 tile of C (the last micro-panel of N = 196 has 4 live columns of 32).
  MicroKernel<T> kernel_half = nullptr;
};

// The largest tile any ISA uses; the driver keeps an edge scratch tile this big.
constexpr int kMaxTileElems = 16 * 64;

// Depth of the K slices a GEMM runs: near-equal and at most kc (K = 257 is 129 + 128, not
// 256 + 1). Drivers that must add in the GEMM's order (conv's column GEMM, bitwise equal to a
// GEMM per image) slice K with it too.
inline int64_t slice_depth(int64_t K, int64_t kc) {
  const int64_t slices = K > kc ? (K + kc - 1) / kc : 1;
  return (K + slices - 1) / slices;
}

// The table of the active ISA (pyengine::active_isa(); defined in cpu/gemm.cpp), for drivers
// that pack their own panels: the LSTM's recurrent steps, 1x1 convs over a batch's columns.
template <typename T>
KernelDesc<T> active_kernel();
// One micro-panel of A (is_a: width MR) or B (width NR) of depth kc, by the table's packer or
// portably where it has none; the PackPanel contract above.
template <typename T>
void pack_panel(const KernelDesc<T>& d, bool is_a, int64_t kc, int w, const T* src, int64_t ld,
                bool x_contiguous, T* dst);

namespace generic {
KernelDesc<float> kernel_f32();
KernelDesc<double> kernel_f64();
}  // namespace generic
namespace avx2 {
KernelDesc<float> kernel_f32();
KernelDesc<double> kernel_f64();
}  // namespace avx2
namespace avx512 {
KernelDesc<float> kernel_f32();
KernelDesc<double> kernel_f64();
}  // namespace avx512

}  // namespace pyengine::cpu::gemm_detail
