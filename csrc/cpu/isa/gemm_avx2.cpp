// GEMM microkernels for AVX2 + FMA. Compiled with -mavx2 -mfma; called only
// when pyengine::active_isa() == Isa::AVX2. See gemm_kernels.h for the contract.
#include "cpu/isa/gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace pyengine::cpu::gemm_detail {
namespace {

// Vector traits so one kernel template serves float and double.
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static V bcast(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static V bcast(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
};

// MR x (NV * lanes) register tile: MR*NV accumulators + NV B vectors + 1
// broadcast must fit the 16 ymm registers.
template <class Tr, int MR, int NV>
void microkernel(int64_t K, const typename Tr::T* a, const typename Tr::T* b, typename Tr::T* c,
                 int64_t ldc, typename Tr::T alpha, typename Tr::T beta) {
  using V = typename Tr::V;
  constexpr int NR = NV * Tr::kLanes;
  static_assert(MR * NV + NV + 1 <= 16, "register tile does not fit 16 ymm registers");

  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Tr::zero();

#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Tr::load(b + v * Tr::kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Tr::bcast(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Tr::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const V va = Tr::bcast(alpha);
  if (beta == typename Tr::T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Tr::storeu(c + i * ldc + v * Tr::kLanes, Tr::mul(va, acc[i][v]));
  } else {
    const V vb = Tr::bcast(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        typename Tr::T* p = c + i * ldc + v * Tr::kLanes;
        Tr::storeu(p, Tr::fma(vb, Tr::loadu(p), Tr::mul(va, acc[i][v])));
      }
  }
}

}  // namespace

// fp32, 6 x 16 tile: 12 accumulators + 2 B vectors + 1 broadcast = 15 ymm.
// Cache blocks (sized for a typical AVX2 core: L1d >= 32 KiB, L2 >= 512 KiB):
//   KC = 256: B micro-panel 256*16*4 = 16 KiB in L1.
//   MC = 120: A block 120*256*4 = 120 KiB in L2.
//   NC = 4096: B panel 256*4096*4 = 4 MiB in L3.
KernelDesc<float> avx2::kernel_f32() { return {6, 16, 120, 256, 4096, &microkernel<F32, 6, 2>}; }

// fp64, 6 x 8 tile, same register budget.
//   KC = 256: B micro-panel 256*8*8 = 16 KiB in L1.
//   MC = 60:  A block 60*256*8 = 120 KiB in L2.
//   NC = 2048: B panel 256*2048*8 = 4 MiB in L3.
KernelDesc<double> avx2::kernel_f64() { return {6, 8, 60, 256, 2048, &microkernel<F64, 6, 2>}; }

}  // namespace pyengine::cpu::gemm_detail

#else  // built without AVX2 flags (non-x86 or odd toolchain): never selected.

namespace pyengine::cpu::gemm_detail {
KernelDesc<float> avx2::kernel_f32() { return generic::kernel_f32(); }
KernelDesc<double> avx2::kernel_f64() { return generic::kernel_f64(); }
}  // namespace pyengine::cpu::gemm_detail

#endif
