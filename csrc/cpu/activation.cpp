// Elementwise special functions for the activations; contract in cpu/activation.h.
#include "cpu/activation.h"

#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "cpu/isa/activation_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {

namespace {

activation_detail::ActivationKernelsF32 kernels() {
  switch (active_isa()) {
    case Isa::AVX512: return activation_detail::avx512::kernels_f32();
    case Isa::AVX2: return activation_detail::avx2::kernels_f32();
    default: return activation_detail::generic::kernels_f32();
  }
}

// fn(i0, i1) over contiguous blocks of [0, n), one per thread; below ~16K elements per thread
// forking a team costs more than it saves.
template <typename F>
void in_blocks(int64_t n, F&& fn) {
  int nt = static_cast<int>(std::min<int64_t>(pyengine::get_num_threads(), n / 16384 + 1));
#ifdef _OPENMP
  if (omp_in_parallel()) nt = 1;
#endif
#pragma omp parallel num_threads(nt)
  {
    int64_t i0, i1;
    team_block(n, i0, i1);
    fn(i0, i1);
  }
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace

// float32: the vectorized kernels of cpu/isa/activation_impl.h, one block per thread.
template <>
void erf<float>(int64_t n, const float* x, float* y) {
  const auto kern = kernels().erf;
  in_blocks(n, [&](int64_t i0, int64_t i1) { kern(i1 - i0, x + i0, y + i0); });
}

template <>
void gelu<float>(int64_t n, const float* x, float* y) {
  const auto kern = kernels().gelu;
  in_blocks(n, [&](int64_t i0, int64_t i1) { kern(i1 - i0, x + i0, y + i0); });
}

template <>
void gelu_backward<float>(int64_t n, const float* x, const float* g, float* dx) {
  const auto kern = kernels().gelu_backward;
  in_blocks(n, [&](int64_t i0, int64_t i1) { kern(i1 - i0, x + i0, g + i0, dx + i0); });
}

// float64 (gradient checks): libm.
template <>
void erf<double>(int64_t n, const double* x, double* y) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = std::erf(x[i]);
  });
}

template <>
void gelu<double>(int64_t n, const double* x, double* y) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = x[i] * 0.5 * (1.0 + std::erf(x[i] * kInvSqrt2));
  });
}

template <>
void gelu_backward<double>(int64_t n, const double* x, const double* g, double* dx) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double v = x[i];
      const double cdf = 0.5 * (1.0 + std::erf(v * kInvSqrt2));
      dx[i] = g[i] * (cdf + v * kInvSqrt2Pi * std::exp(-0.5 * v * v));
    }
  });
}

}  // namespace pyengine::cpu
