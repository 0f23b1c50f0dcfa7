// Internal: the ISA-specific row kernels of the CPU pooling family (cpu/pool.cpp
// is the rest: planes, windows, padding, threads).
//
// The drivers lay every input plane out "phase by phase" in a per-thread
// buffer so that the inputs a window tap reads for consecutive outputs are
// contiguous, whatever the stride: with stride s and left padding pad, the
// padded column v = iw + pad goes to phase row r = v % s at position j = v / s.
// Tap (kh, kw) of outputs ow = 0.. then reads phase row (kw*dW) % s from
// position ow + (kw*dW) / s on. The row kernels below only see such rows.
//
// Each ISA file (pool_generic.cpp, pool_avx2.cpp, pool_avx512.cpp) hands out
// one table of function pointers per dtype; everything else in those files
// lives in an anonymous namespace (no inline code compiled with wide-ISA flags
// may be picked by the linker for a baseline caller). This header holds only
// plain types and the getter declarations for that reason.
#pragma once
#include <cstdint>

namespace pyengine::cpu::pool_detail {

template <typename T>
struct RowKernels {
  // dst[r*Lp + j] = src[j*s + r - pad] where 0 <= j*s + r - pad < W, else fill;
  // for r in [0, s), j in [0, Lp). Overwrites dst.
  void (*dephase)(const T* src, int64_t W, int64_t pad, int64_t s, T fill, T* dst, int64_t Lp);
  // The inverse on the kept columns: dst[iw] = src[r*Lp + j] with iw + pad = j*s + r, for iw in
  // [0, W). Padding positions of src are dropped. Overwrites dst.
  void (*rephase)(const T* src, int64_t Lp, int64_t pad, int64_t s, int64_t W, T* dst);
  // For j in [0, n): out[j] = max over taps t = 0..ntaps-1 of src[t][j], scanning the taps in
  // order with PyTorch's rule: tap t wins when src[t][j] > best or src[t][j] is NaN (so ties
  // keep the earlier tap and the last NaN wins). idx (may be null): idx[j] = base[t] + step*j
  // of the winner, or init_base + init_col[j] when no tap beats -inf (or ntaps == 0).
  // Index arithmetic may be 32-bit: the caller keeps every index below 2^31.
  void (*max_row)(int64_t n, int ntaps, const T* const* src, const int64_t* base, int64_t step,
                  int64_t init_base, const int64_t* init_col, T* out, int64_t* idx);
  // For j in [0, n): out[j] = (sum over taps t in order of src[t][j], from 0) / div[j].
  void (*sum_row)(int64_t n, int ntaps, const T* const* src, const T* div, T* out);
  // For t in order, j in [0, n): dst[t][j] += g[j]. Rows of different taps may overlap.
  void (*add_row)(int64_t n, int ntaps, T* const* dst, const T* g);
};

namespace generic {
RowKernels<float> row_kernels_f32();
RowKernels<double> row_kernels_f64();
}  // namespace generic
namespace avx2 {
RowKernels<float> row_kernels_f32();
RowKernels<double> row_kernels_f64();
}  // namespace avx2
namespace avx512 {
RowKernels<float> row_kernels_f32();
RowKernels<double> row_kernels_f64();
}  // namespace avx512

}  // namespace pyengine::cpu::pool_detail
