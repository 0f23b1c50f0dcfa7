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
// NaN propagates; +-inf gives +-1.
#pragma once
#ifndef PE_ACT_ISA
#error "define PE_ACT_ISA (generic, avx2 or avx512) before including activation_impl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/isa/activation_kernels.h"

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

// exp(y) for y in [-87, 0] (2^k stays a normal float): y = k ln2 + r, ln2 in two parts
// (k * ln2_hi is exact); k rounded to nearest by the 1.5 * 2^23 shift (vectorizes on every
// ISA, unlike nearbyint).
inline float exp_neg(float y) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.42860682030941723e-06f;
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

void erf_f32_impl(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = erf_one(x[i]);
}

constexpr float kInvSqrt2 = 0.707106781186547524f;
constexpr float kInvSqrt2Pi = 0.398942280401432678f;

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
