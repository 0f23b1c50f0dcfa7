// Portable pooling row kernels: the shared template (pool_rows.inc) with
// scalar traits, which the compiler may auto-vectorize for the baseline ISA.
// See pool_kernels.h for the contracts.
#include <algorithm>
#include <cstring>
#include <limits>

#include "cpu/isa/pool_kernels.h"

namespace pyengine::cpu::pool_detail {
namespace {
#include "cpu/isa/pool_rows.inc"
}  // namespace

RowKernels<float> generic::row_kernels_f32() {
  return make_row_kernels<ScalarTraits<float>, ScalarTraits<float>>();
}
RowKernels<double> generic::row_kernels_f64() {
  return make_row_kernels<ScalarTraits<double>, ScalarTraits<double>>();
}

}  // namespace pyengine::cpu::pool_detail
