// Thread count for OpenMP kernels: pyengine.set_num_threads / get_num_threads.
// The count is process-wide (not OpenMP's per-thread ICV), so kernels called
// from any Python thread agree: write `#pragma omp parallel
// num_threads(pyengine::get_num_threads())`.
#pragma once

namespace pyengine {
int get_num_threads();
void set_num_threads(int n);  // n >= 1, else ValueError
bool openmp_enabled();
}  // namespace pyengine
