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
// NVS: the packed B panel's width in vectors (NVS > NV: an edge kernel that computes only the
// first NV vectors of each packed row).
template <class Tr, int MR, int NV, int NVS = NV>
void microkernel(int64_t K, const typename Tr::T* a, const typename Tr::T* b, typename Tr::T* c,
                 int64_t ldc, typename Tr::T alpha, typename Tr::T beta) {
  using V = typename Tr::V;
  constexpr int NR = NVS * Tr::kLanes;
  static_assert(MR * NV + NV + 1 <= 32, "register tile does not fit 32 zmm registers");

  // Warm the C tile while the k loop runs; it is written at the end.
  for (int i = 0; i < MR; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

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

// In-register transpose of an 8 x 8 float block: r[i][j] -> r[j][i]. Forced
// inline: as a call, r[] goes through memory and the transposing pack (B^T,
// and A without transA) costs ~40% of a small-M GEMM.
__attribute__((always_inline)) inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);      // a0 b0 c0 d0 | a4 ...
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // a1 b1 c1 d1 | a5 ...
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

__mmask8 low_mask(int n) {
  return n >= 8 ? __mmask8(0xFF) : n <= 0 ? __mmask8(0) : __mmask8((1u << n) - 1);
}

// fp32 packing (contract: gemm_detail::PackPanel), W a multiple of 8.
// Contiguous source rows are copied with masked loads (the mask does the zero
// padding); strided ones go through 8 x 8 register transposes so both loads
// and stores stay vector-wide.
template <int W>
void pack_f32(int64_t kc, int w, const float* src, int64_t ld, bool x_contiguous, float* dst) {
  static_assert(W % 8 == 0, "pack width must be a multiple of 8");
  if (x_contiguous) {
    __mmask8 m[W / 8];
    for (int c = 0; c < W / 8; ++c) m[c] = low_mask(w - 8 * c);
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = src + k * ld;
#pragma GCC unroll 4
      for (int c = 0; c < W / 8; ++c)
        _mm256_store_ps(dst + k * W + 8 * c, _mm256_maskz_loadu_ps(m[c], s + 8 * c));
    }
    return;
  }
  for (int x0 = 0; x0 < W; x0 += 8) {
    const int rows = w - x0;  // valid rows in this group of 8 (may be <= 0)
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const int nk = static_cast<int>(kc - k0 < 8 ? kc - k0 : 8);
      const __mmask8 km = low_mask(nk);
      __m256 r[8];
      if (rows >= 8 && nk == 8) {  // the common full block: plain loads and stores
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (x0 + i) * ld + k0);
        transpose8x8(r);
#pragma GCC unroll 8
        for (int kk = 0; kk < 8; ++kk) _mm256_store_ps(dst + (k0 + kk) * W + x0, r[kk]);
        continue;
      }
      for (int i = 0; i < 8; ++i)
        r[i] = i < rows ? _mm256_maskz_loadu_ps(km, src + (x0 + i) * ld + k0) : _mm256_setzero_ps();
      transpose8x8(r);
      for (int kk = 0; kk < nk; ++kk) _mm256_store_ps(dst + (k0 + kk) * W + x0, r[kk]);
    }
  }
}

}  // namespace

// fp32, 8 x 32 tile: 16 accumulators + 2 B vectors + 1 broadcast = 19 zmm.
// Each k step does 16 FMAs (8 cycles on Zen 5's 2 FMA pipes) against 2 vector
// loads and 8 broadcasts. Measured on Zen 5 (1 thread, 512^3..2048^3), 14x32,
// 12x32, 8x32, 6x64 and 8x48 all land within noise of each other (~250
// GFLOP/s, ~88% of the 287 GFLOP/s FMA peak); 8x32 wins at small and ragged
// sizes (less padding, cheaper edge tiles), so it is the one kept.
// Cache blocks (Zen 5: L1d 48 KiB, L2 1 MiB per core, L3 32 MiB shared):
//   KC = 256: B micro-panel KC x NR = 256*32*4 = 32 KiB stays in L1 while the
//             A micro-panels (8*256*4 = 8 KiB each) stream through from L2.
//   MC = 192: A block MC x KC = 192*256*4 = 192 KiB, a fifth of L2, so the B
//             panel streaming from L3 does not evict it.
//   NC = 4096: B panel KC x NC = 256*4096*4 = 4 MiB, in L3 with room for both
//             cores' traffic.
KernelDesc<float> avx512::kernel_f32() {
  KernelDesc<float> d{8, 32, 192, 256, 4096, &microkernel<F32, 8, 2>, &pack_f32<8>, &pack_f32<32>};
  d.kernel_half = &microkernel<F32, 8, 1, 2>;  // edges of <= 16 live columns
  return d;
}

// fp64, 8 x 16 tile: same register budget as fp32, half the lanes. Packing
// is the driver's portable one (float64 is for gradient checks, not speed).
//   KC = 256: B micro-panel 256*16*8 = 32 KiB in L1.
//   MC = 96:  A block 96*256*8 = 192 KiB in L2.
//   NC = 2048: B panel 256*2048*8 = 4 MiB in L3.
KernelDesc<double> avx512::kernel_f64() { return {8, 16, 96, 256, 2048, &microkernel<F64, 8, 2>}; }

}  // namespace pyengine::cpu::gemm_detail

#else  // built without AVX-512 flags (non-x86 or odd toolchain): never selected.

namespace pyengine::cpu::gemm_detail {
KernelDesc<float> avx512::kernel_f32() { return generic::kernel_f32(); }
KernelDesc<double> avx512::kernel_f64() { return generic::kernel_f64(); }
}  // namespace pyengine::cpu::gemm_detail

#endif
