// Thread count for OpenMP kernels: pyengine.set_num_threads / get_num_threads.
// The count is process-wide (not OpenMP's per-thread ICV), so kernels called
// from any Python thread agree: write `#pragma omp parallel
// num_threads(pyengine::get_num_threads())`.
#pragma once
#include <cstdint>

namespace pyengine {
int get_num_threads();
void set_num_threads(int n);  // n >= 1, else ValueError
bool openmp_enabled();

// [begin, end) of n items for the calling member of the enclosing OpenMP team, in contiguous
// static blocks (all of [0, n) outside a team). Out of line, in a baseline translation unit:
// the ISA files include this header too (see cpu/isa/rowwise_util.h on the ODR hazard).
void team_block(int64_t n, int64_t& begin, int64_t& end);
}  // namespace pyengine
