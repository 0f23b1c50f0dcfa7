// Elementwise special functions for the activations; contract in cpu/activation.h.
#include "cpu/activation.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {

template <typename T>
void erf(int64_t n, const T* x, T* y) {
  int nt = static_cast<int>(std::min<int64_t>(pyengine::get_num_threads(), n / 16384 + 1));
#ifdef _OPENMP
  if (omp_in_parallel()) nt = 1;
#endif
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
}

template void erf<float>(int64_t, const float*, float*);
template void erf<double>(int64_t, const double*, double*);

}  // namespace pyengine::cpu
