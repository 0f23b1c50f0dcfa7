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

int erf_threads(int64_t n) {
  int nt = static_cast<int>(std::min<int64_t>(pyengine::get_num_threads(), n / 16384 + 1));
#ifdef _OPENMP
  if (omp_in_parallel()) nt = 1;
#endif
  return nt;
}

activation_detail::ErfF32 erf_kernel() {
  switch (active_isa()) {
    case Isa::AVX512: return activation_detail::avx512::erf_f32();
    case Isa::AVX2: return activation_detail::avx2::erf_f32();
    default: return activation_detail::generic::erf_f32();
  }
}

}  // namespace

// float32: the vectorized kernel of cpu/isa/activation_impl.h, in one block per thread.
template <>
void erf<float>(int64_t n, const float* x, float* y) {
  const activation_detail::ErfF32 kern = erf_kernel();
  const int nt = erf_threads(n);
#pragma omp parallel num_threads(nt)
  {
    int64_t i0, i1;
    team_block(n, i0, i1);
    kern(i1 - i0, x + i0, y + i0);
  }
}

// float64 (gradient checks): libm.
template <>
void erf<double>(int64_t n, const double* x, double* y) {
  const int nt = erf_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
}

}  // namespace pyengine::cpu
