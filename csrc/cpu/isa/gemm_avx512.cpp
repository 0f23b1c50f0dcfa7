// GEMM microkernels for AVX-512 (F/VL/BW/DQ + FMA). Compiled with
// -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma -mavx2; called only when
// pyengine::active_isa() == Isa::AVX512. See gemm_kernels.h for the contract.
#include "cpu/isa/gemm_kernels.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

namespace pyengine::cpu::gemm_detail {
namespace {

// Vector traits so one kernel template serves float and double.
struct F32 {
  using T = float;
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_load_ps(p); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static V bcast(T x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_load_pd(p); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static V bcast(T x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
};

// MR x (NV * lanes) register tile: MR*NV accumulators + NV B vectors + 1
// broadcast must fit the 32 zmm registers. Per k step: NV aligned loads of B,
// MR broadcasts of A, MR*NV independent FMAs (enough to hide the 4-cycle FMA
// latency on both FMA pipes).
template <class Tr, int MR, int NV>
void microkernel(int64_t K, const typename Tr::T* a, const typename Tr::T* b, typename Tr::T* c,
                 int64_t ldc, typename Tr::T alpha, typename Tr::T beta) {
  using V = typename Tr::V;
  constexpr int NR = NV * Tr::kLanes;
  static_assert(MR * NV + NV + 1 <= 32, "register tile does not fit 32 zmm registers");

  // Warm the C tile while the k loop runs; it is written at the end.
  for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = Tr::zero();

#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = Tr::load(b + v * Tr::kLanes);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai = Tr::bcast(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = Tr::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const V va = Tr::bcast(alpha);
  if (beta == typename Tr::T(0)) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) Tr::storeu(c + i * ldc + v * Tr::kLanes, Tr::mul(va, acc[i][v]));
  } else {
    const V vb = Tr::bcast(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        typename Tr::T* p = c + i * ldc + v * Tr::kLanes;
        Tr::storeu(p, Tr::fma(vb, Tr::loadu(p), Tr::mul(va, acc[i][v])));
      }
  }
}

#ifndef PE_GEMM512_F32_MR  // tuning hooks for the standalone harness only
#define PE_GEMM512_F32_MR 8
#define PE_GEMM512_F32_NV 2
#endif
#ifndef PE_GEMM512_F32_MC
#define PE_GEMM512_F32_MC 192
#define PE_GEMM512_F32_KC 256
#endif

}  // namespace

// fp32, 14 x 32 tile: 28 accumulators + 2 B vectors + 1 broadcast = 31 zmm.
// Each k step does 28 FMAs (14 cycles on 2 pipes) against 2 vector loads and
// 14 broadcasts, well under Zen 5's load bandwidth.
// Cache blocks (Zen 5: L1d 48 KiB, L2 1 MiB per core, L3 32 MiB shared):
//   KC = 256: B micro-panel KC x NR = 256*32*4 = 32 KiB stays in L1 while the
//             A micro-panels (14*256*4 = 14 KiB each) stream through.
//   MC = 168: A block MC x KC = 168*256*4 = 168 KiB, a fraction of L2 so the
//             B panel rows streaming from L3 do not evict it.
//   NC = 4080: B panel KC x NC = 256*4080*4 = 4 MiB, in L3 with room for both
//             cores' traffic. Multiple of NR.
KernelDesc<float> avx512::kernel_f32() {
  constexpr int MR = PE_GEMM512_F32_MR, NV = PE_GEMM512_F32_NV;
  return {MR, NV * F32::kLanes, PE_GEMM512_F32_MC, PE_GEMM512_F32_KC, 4096 / (NV * 16) * (NV * 16),
          &microkernel<F32, MR, NV>};
}

// fp64, 14 x 16 tile (same register budget as fp32, half the lanes).
//   KC = 256: B micro-panel 256*16*8 = 32 KiB in L1.
//   MC = 84:  A block 84*256*8 = 168 KiB in L2.
//   NC = 2048: B panel 256*2048*8 = 4 MiB in L3.
KernelDesc<double> avx512::kernel_f64() {
  return {14, 16, 84, 256, 2048, &microkernel<F64, 14, 2>};
}

}  // namespace pyengine::cpu::gemm_detail

#else  // built without AVX-512 flags (non-x86 or odd toolchain): never selected.

namespace pyengine::cpu::gemm_detail {
KernelDesc<float> avx512::kernel_f32() { return generic::kernel_f32(); }
KernelDesc<double> avx512::kernel_f64() { return generic::kernel_f64(); }
}  // namespace pyengine::cpu::gemm_detail

#endif
