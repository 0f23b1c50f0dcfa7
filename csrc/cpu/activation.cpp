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

// y = kern(x) / dx = kern(x, g) over blocks, one per thread (the float32 entry points).
void unary_f32(activation_detail::UnaryF32 kern, int64_t n, const float* x, float* y) {
  in_blocks(n, [&](int64_t i0, int64_t i1) { kern(i1 - i0, x + i0, y + i0); });
}
void unary_backward_f32(activation_detail::UnaryBackwardF32 kern, int64_t n, const float* x,
                        const float* g, float* dx) {
  in_blocks(n, [&](int64_t i0, int64_t i1) { kern(i1 - i0, x + i0, g + i0, dx + i0); });
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

}  // namespace

// float32: the vectorized kernels of cpu/isa/activation_impl.h, one block per thread.
template <>
void erf<float>(int64_t n, const float* x, float* y) {
  unary_f32(kernels().erf, n, x, y);
}
template <>
void gelu<float>(int64_t n, const float* x, float* y) {
  unary_f32(kernels().gelu, n, x, y);
}
template <>
void gelu_backward<float>(int64_t n, const float* x, const float* g, float* dx) {
  unary_backward_f32(kernels().gelu_backward, n, x, g, dx);
}

namespace {

// float64: sigmoid(z) and sigmoid(z) (1 - sigmoid(z)) from e = exp(-|z|), as the float32 kernel.
void sigmoid2(double z, double& s, double& ds) {
  const double e = std::exp(-std::fabs(z)), sp = 1.0 / (1.0 + e);
  s = z >= 0.0 ? sp : e * sp;
  ds = e * sp * sp;
}

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluTanhA = 0.044715;

}  // namespace

template <>
void gelu_tanh<float>(int64_t n, const float* x, float* y) {
  unary_f32(kernels().gelu_tanh, n, x, y);
}
template <>
void gelu_tanh_backward<float>(int64_t n, const float* x, const float* g, float* dx) {
  unary_backward_f32(kernels().gelu_tanh_backward, n, x, g, dx);
}
template <>
void silu<float>(int64_t n, const float* x, float* y) {
  unary_f32(kernels().silu, n, x, y);
}
template <>
void silu_backward<float>(int64_t n, const float* x, const float* g, float* dx) {
  unary_backward_f32(kernels().silu_backward, n, x, g, dx);
}

template <>
void gelu_tanh<double>(int64_t n, const double* x, double* y) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double v = x[i];
      double s, ds;  // 0.5 (1 + tanh(u)) = sigmoid(2u), as the float32 kernel
      sigmoid2(2.0 * kSqrt2OverPi * (v + kGeluTanhA * v * v * v), s, ds);
      y[i] = v * s;
    }
  });
}
template <>
void gelu_tanh_backward<double>(int64_t n, const double* x, const double* g, double* dx) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double v = x[i];
      double s, ds;
      sigmoid2(2.0 * kSqrt2OverPi * (v + kGeluTanhA * v * v * v), s, ds);
      const double du = kSqrt2OverPi * (1.0 + 3.0 * kGeluTanhA * v * v);
      dx[i] = g[i] * (s + (ds > 0.0 ? 2.0 * v * ds * du : 0.0));  // NaN: s is NaN
    }
  });
}
template <>
void silu<double>(int64_t n, const double* x, double* y) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double s, ds;
      sigmoid2(x[i], s, ds);
      y[i] = x[i] * s;
    }
  });
}
template <>
void silu_backward<double>(int64_t n, const double* x, const double* g, double* dx) {
  in_blocks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double s, ds;
      sigmoid2(x[i], s, ds);
      dx[i] = g[i] * (s + (ds > 0.0 ? x[i] * ds : 0.0));  // NaN: s is NaN
    }
  });
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
