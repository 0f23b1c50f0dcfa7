// The float32 kernels of the activation family (erf, exact and tanh GELU, SiLU), compiled once
// per ISA (cpu/isa/activation_<isa>.cpp define PE_ACT_ISA and include this file): plain loops
// that the compiler vectorizes with the file's flags. Contract: cpu/activation.h.
//
// |x| < 1:  erf(x) = x * P(x^2), P of degree 6;
// 1 <= |x| < 4: erf(x) = 1 - exp(-x^2) * R(x), R(x) = erfc(x) exp(x^2) of degree 12 in x - 2.5;
//   x^2 is carried as hi + lo (an FMA gives the rounding error lo) so that exp(-x^2) is
//   accurate although x^2 is not exact in float;
// |x| >= 4: +-1 (erfc(4) = 1.5e-8 is below half an ulp of 1).
// The coefficients are least-squares fits of the relative error on Chebyshev nodes, computed
// for this file with NumPy in float64. Measured against float64 erf over [-5, 5]: at most 2 ulp.
// NaN propagates; +-inf gives +-1. The AVX-512 build evaluates erf (for erf and exact GELU) from
// a 16-interval table instead (see erf_v below).
#pragma once
#ifndef PE_ACT_ISA
#error "define PE_ACT_ISA (generic, avx2 or avx512) before including activation_impl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/isa/activation_kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace pyengine::cpu::activation_detail::PE_ACT_ISA {
namespace {

// erf(x) / x = P(x^2) on |x| < 1
constexpr float kP[] = {1.1283791656934401f,    -0.37612625576736303f,  0.11283582307023318f,
                        -0.026853692625932069f, 0.0051881006470789609f, -0.0008008197338788825f,
                        7.8472657289829773e-05f};
// erfc(x) exp(x^2) = R(x - 2.5) on 1 <= x <= 4
constexpr float kR[] = {0.21080636368928496f,     -0.074347338259068849f,  0.024938007350088148f,
                        -0.0080016799709006336f,  0.0024669976810991951f,  -0.00073318840141073762f,
                        0.00021105114124085091f,  -5.948653222079877e-05f, 1.5997156134118021e-05f,
                        -3.7637710422443182e-06f, 1.0234963355379434e-06f, -4.2377854822875372e-07f,
                        9.5925096997573345e-08f};
// exp(r) on |r| <= ln2 / 2
constexpr float kE[] = {1.0000000005923169f,   1.000000036141403f,   0.49999991490245238f,
                        0.16666420761504014f,  0.04166835827806159f, 0.0083747774883281383f,
                        0.0013829428058781713f};

// a * b + c, fused where the ISA has FMA (the generic x86-64 path has not: std::fma would be a
// library call there)
inline float mul_add(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

template <int K>
inline float horner(const float (&c)[K], float t) {
  float p = c[K - 1];
#pragma GCC unroll 16  // fully: a loop inside the element loop would stop its vectorization
  for (int i = K - 2; i >= 0; --i) p = mul_add(p, t, c[i]);
  return p;
}

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 in two parts: k * kLn2Hi is exact
constexpr float kLn2Lo = 1.42860682030941723e-06f;

// exp(y) for y in [-87, 0] (2^k stays a normal float): y = k ln2 + r, ln2 in two parts
// (k * ln2_hi is exact); k rounded to nearest by the 1.5 * 2^23 shift (vectorizes on every
// ISA, unlike nearbyint).
inline float exp_neg(float y) {
  constexpr float kShift = 12582912.0f;
  const float k = (y * kLog2e + kShift) - kShift;
  const float r = mul_add(-k, kLn2Lo, mul_add(-k, kLn2Hi, y));
  // 2^k, k in [-126, 0]: unsigned, so that the shift is defined for every bit pattern
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return horner(kE, r) * scale;
}

// x^2 = hi + lo exactly (lo: the rounding error of hi)
inline void square2(float c, float& hi, float& lo) {
  hi = c * c;
#ifdef __FMA__
  lo = std::fma(c, c, -hi);
#else
  lo = static_cast<float>(static_cast<double>(c) * c - hi);
#endif
}

inline float erf_one(float x) {
  const float a = std::fabs(x);
  const float small = a * horner(kP, a * a);
  // Keeps exp_neg in range; NaN becomes 4 here (no NaN may reach the float -> int conversion
  // in exp_neg) and is restored by the last select.
  const float c = a < 4.0f ? a : 4.0f;
  float hi, lo;
  square2(c, hi, lo);
  const float e = exp_neg(-hi) * (1.0f - lo);
  const float big = 1.0f - e * horner(kR, c - 2.5f);
  // Selects written as ternaries of plain values so that every ISA if-converts them.
  float r = a < 1.0f ? small : big;
  r = a >= 4.0f ? 1.0f : r;
  r = std::copysign(r, x);  // erf(-0) = -0
  return a == a ? r : x;    // NaN in, NaN out
}

constexpr float kInvSqrt2 = 0.707106781186547524f;
constexpr float kInvSqrt2Pi = 0.398942280401432678f;

#if defined(__AVX512F__)
// ---- AVX-512: erf from a table of 16 intervals ---------------------------------------------
// [0, 4) in 16 intervals [i/4, (i+1)/4), each with a polynomial of degree 5 in t = a - (i+1/2)/4:
//   i < 4 (a < 1):  G_i(t) = erf(a) / a      -> erf = a G,    erfc = 1 - a G;
//   i >= 4:         E_i(t) = erfc(a)         -> erf = 1 - E,  erfc = E (no cancellation);
// fitted by least squares of the relative error on Chebyshev nodes (NumPy float64). Each lane
// picks its interval's coefficients with one permute per coefficient, from 6 registers: one
// short polynomial and no exp, where the portable form below evaluates two polynomials and an
// exp for every lane. Measured against float64 erf on [0, 4): at most 1.9 ulp; 4 and beyond:
// +-1, as below.
constexpr int kErfcFrom = 4;  // first interval tabulated as erfc
alignas(64) constexpr float kG[6][16] = {
    {1.12252963f, 1.07764506f, 0.997185409f, 0.896085799f, 0.111611769f, 0.0518299229f,
     0.0215562657f, 0.00800994225f, 0.00265402952f, 0.000782938499f, 0.000205375938f,
     4.78549409e-05f, 9.8967721e-06f, 1.81529288e-06f, 2.95143082e-07f, 4.25145572e-08f},
    {-0.0931549519f, -0.259446084f, -0.373897403f, -0.424389422f, -0.318273991f, -0.17035982f,
     -0.0804722905f, -0.0335458368f, -0.0123408148f, -0.00400646869f, -0.00114786834f,
     -0.00029022462f, -6.47571505e-05f, -1.27512185e-05f, -2.21577238e-06f, -3.39787078e-07f},
    {-0.365642309f, -0.288495272f, -0.16526486f, -0.0397309512f, 0.358060271f, 0.23424761f,
     0.130769312f, 0.0628989637f, 0.0262240153f, 0.00951499585f, 0.00301289558f, 0.000834268343f,
     0.000202317198f, 4.3020118e-05f, 8.02822615e-06f, 1.31581419e-06f},
    {0.0553776175f, 0.142985716f, 0.175344661f, 0.151600942f, -0.162443578f, -0.157927006f,
     -0.114833832f, -0.0674395636f, -0.0330390818f, -0.0137328953f, -0.00489215599f,
     -0.00150345196f, -0.000400401623f, -9.27129877e-05f, -1.87106525e-05f, -3.29732825e-06f},
    {0.106054366f, 0.0626982301f, 0.00198060903f, -0.0444000699f, -0.0283314288f, 0.0299896877f,
     0.0493869409f, 0.0421651043f, 0.026401775f, 0.0132035632f, 0.00546488119f, 0.00190730579f,
     0.000567652169f, 0.000145129845f, 3.20378786e-05f, 6.12942904e-06f},
    {-0.0194636676f, -0.046244245f, -0.0464531966f, -0.0255095623f, 0.0607165731f, 0.0300786961f,
     0.00188612763f, -0.0114610409f, -0.0123783294f, -0.00823692232f, -0.00413901731f,
     -0.00167409447f, -0.000561316032f, -0.000158606956f, -3.81590071e-05f, -7.87148474e-06f},
};

// The table's polynomial at a = |z| (clamped below 4; NaN takes the last interval); i: the
// interval.
inline __m512 erf_table(__m512 a, __m512i& i) {
  const __m512 c = _mm512_min_ps(a, _mm512_set1_ps(3.99999976f));
  i = _mm512_cvttps_epi32(_mm512_mul_ps(c, _mm512_set1_ps(4.0f)));
  const __m512 mid = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_set1_ps(0.25f),
                                     _mm512_set1_ps(0.125f));  // exact
  const __m512 t = _mm512_sub_ps(c, mid);
  __m512 p = _mm512_permutexvar_ps(i, _mm512_load_ps(kG[5]));
  for (int k = 4; k >= 0; --k)
    p = _mm512_fmadd_ps(p, t, _mm512_permutexvar_ps(i, _mm512_load_ps(kG[k])));
  return p;
}

inline __m512 erf_v(__m512 z) {
  const __m512 a = _mm512_abs_ps(z);
  __m512i i;
  const __m512 p = erf_table(a, i);
  const __mmask16 tail = _mm512_cmpge_epi32_mask(i, _mm512_set1_epi32(kErfcFrom));
  __m512 r = _mm512_mask_sub_ps(_mm512_mul_ps(a, p), tail, _mm512_set1_ps(1.0f), p);
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(4.0f), _CMP_GE_OQ), r,
                           _mm512_set1_ps(1.0f));
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  r = _mm512_or_ps(r, _mm512_and_ps(z, sign));                                // erf(-0) = -0
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), r, z);  // NaN in, NaN out
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2, below 0 as erfc(|x| / sqrt 2) / 2 straight from the
// table where it holds erfc (no 1 - erf cancellation). |x| / sqrt 2 >= 4: 0 or 1, as the
// portable form gives; NaN: NaN.
inline __m512 normal_cdf_v(__m512 x) {
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 a = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(kInvSqrt2)));
  __m512i i;
  const __m512 p = erf_table(a, i);
  const __mmask16 tail = _mm512_cmpge_epi32_mask(i, _mm512_set1_epi32(kErfcFrom));
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 ap = _mm512_mul_ps(a, p);
  // x >= 0: 1/2 + a G / 2 or 1 - E / 2; x < 0: 1/2 - a G / 2 or E / 2
  __m512 r =
      _mm512_mask_blend_ps(neg, _mm512_fmadd_ps(half, ap, half), _mm512_fnmadd_ps(half, ap, half));
  r = _mm512_mask_blend_ps(
      tail, r,
      _mm512_mask_blend_ps(neg, _mm512_fnmadd_ps(half, p, _mm512_set1_ps(1.0f)),
                           _mm512_mul_ps(half, p)));
  const __mmask16 far = _mm512_cmp_ps_mask(a, _mm512_set1_ps(4.0f), _CMP_GE_OQ);
  r = _mm512_mask_blend_ps(far, r,
                           _mm512_maskz_mov_ps(static_cast<__mmask16>(~neg), _mm512_set1_ps(1.0f)));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
}

// exp(y) for y in [-87, 0], as exp_neg: y = k ln2 + r, the same polynomial, then r's value
// scaled by 2^k (scalef).
inline __m512 exp_neg_v(__m512 y) {
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), y);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kE[6]);
  for (int j = 5; j >= 0; --j) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kE[j]));
  return _mm512_scalef_ps(p, k);
}

// y[i] = f(x[i]) 16 lanes at a time, the tail under a mask
template <class F>
inline void map_v(int64_t n, const float* x, float* y, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// dx[i] = f(x[i], g[i]), likewise
template <class F>
inline void map2_v(int64_t n, const float* x, const float* g, float* dx, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dx + i, f(_mm512_loadu_ps(x + i), _mm512_loadu_ps(g + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dx + i, m,
                          f(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, g + i)));
  }
}

void erf_f32_impl(int64_t n, const float* x, float* y) { map_v(n, x, y, erf_v); }

void gelu_f32_impl(int64_t n, const float* x, float* y) {
  map_v(n, x, y, [](__m512 v) { return _mm512_mul_ps(v, normal_cdf_v(v)); });
}

// phi(x) = exp(-x^2 / 2) / sqrt(2 pi), 0 below -87 (and for NaN: dx stays NaN through Phi)
void gelu_backward_f32_impl(int64_t n, const float* x, const float* g, float* dx) {
  map2_v(n, x, g, dx, [](__m512 v, __m512 gv) {
    const __m512 lim = _mm512_set1_ps(-87.0f);
    const __m512 q = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(-0.5f), v), v);
    const __mmask16 in = _mm512_cmp_ps_mask(q, lim, _CMP_GT_OQ);
    const __m512 pdf =
        _mm512_maskz_mul_ps(in, _mm512_set1_ps(kInvSqrt2Pi), exp_neg_v(_mm512_max_ps(q, lim)));
    return _mm512_mul_ps(gv, _mm512_fmadd_ps(v, pdf, normal_cdf_v(v)));
  });
}

#else  // the portable form, vectorized by the compiler

void erf_f32_impl(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = erf_one(x[i]);
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2
inline float normal_cdf(float x) { return 0.5f * (1.0f + erf_one(x * kInvSqrt2)); }

void gelu_f32_impl(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * normal_cdf(x[i]);
}

// phi(x) = exp(-x^2 / 2) / sqrt(2 pi); below -87 the exponent's result is 0 anyway.
void gelu_backward_f32_impl(int64_t n, const float* x, const float* g, float* dx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float q = -0.5f * v * v;
    const float h = q > -87.0f ? q : -87.0f;  // NaN -> -87 (see erf_one); dx stays NaN
    const float pdf = h > -87.0f ? kInvSqrt2Pi * exp_neg(h) : 0.0f;
    dx[i] = g[i] * (normal_cdf(v) + v * pdf);
  }
}

#endif

// sigmoid(z) as s and s (1 - s). e = exp(-|z|), computed as exp(-|z|/2) squared so that it
// stays accurate down into the subnormal range (exp_neg needs its argument above -87);
// sp = 1 / (1 + e) = sigmoid(|z|); then s = sp for z >= 0, else e sp, and s (1 - s) = e sp^2
// either way (no cancellation where s is near 1). A NaN z gives a finite s here: the callers
// multiply by z or x, which brings the NaN back.
inline void sigmoid2(float z, float& s, float& ds) {
  const float h = -0.5f * std::fabs(z);
  const float e0 = exp_neg(h > -87.0f ? h : -87.0f);  // |z| > 174: e underflows to 0 anyway
  const float e = e0 * e0;
  const float sp = 1.0f / (1.0f + e);
  s = z >= 0.0f ? sp : e * sp;
  ds = e * sp * sp;
}

constexpr float kSqrt2OverPi = 0.797884560802865356f;
constexpr float kGeluTanhA = 0.044715f;

// 0.5 x (1 + tanh(u)) = x sigmoid(2u): no 1 + tanh cancellation for negative x.
void gelu_tanh_f32_impl(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float s, ds;
    sigmoid2(2.0f * kSqrt2OverPi * v * (1.0f + kGeluTanhA * v * v), s, ds);
    y[i] = v * s;
  }
}

// d/dx x sigmoid(2u) = s + 2 x s (1 - s) u'; the second term is 0 where s (1 - s) is (for |x|
// so large that u' overflows, and at +-inf: the derivative's limits 1 and 0, not 0 * inf).
void gelu_tanh_backward_f32_impl(int64_t n, const float* x, const float* g, float* dx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float s, ds;
    sigmoid2(2.0f * kSqrt2OverPi * v * (1.0f + kGeluTanhA * v * v), s, ds);
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluTanhA * v * v);
    const float t = ds > 0.0f ? 2.0f * v * ds * du : 0.0f;
    dx[i] = g[i] * (v == v ? s + t : v);
  }
}

void silu_f32_impl(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float s, ds;
    sigmoid2(x[i], s, ds);
    y[i] = x[i] * s;
  }
}

// d/dx x sigmoid(x) = s + x s (1 - s); the second term is 0 where s (1 - s) is (at +-inf the
// derivative's limits 1 and 0, not inf * 0).
void silu_backward_f32_impl(int64_t n, const float* x, const float* g, float* dx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float s, ds;
    sigmoid2(v, s, ds);
    const float t = ds > 0.0f ? v * ds : 0.0f;
    dx[i] = g[i] * (v == v ? s + t : v);
  }
}

}  // namespace

ActivationKernelsF32 kernels_f32() {
  return {&erf_f32_impl,
          &gelu_f32_impl,
          &gelu_backward_f32_impl,
          &gelu_tanh_f32_impl,
          &gelu_tanh_backward_f32_impl,
          &silu_f32_impl,
          &silu_backward_f32_impl};
}

}  // namespace pyengine::cpu::activation_detail::PE_ACT_ISA
