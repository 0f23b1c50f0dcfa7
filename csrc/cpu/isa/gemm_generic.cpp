// Portable GEMM microkernels: plain C++ with a fixed-size accumulator tile
// that the compiler keeps in registers and auto-vectorizes for the baseline
// ISA (SSE2 on x86-64, NEON on arm64). No extra compile flags. See
// gemm_kernels.h for the contract.
#include "cpu/isa/gemm_kernels.h"

namespace pyengine::cpu::gemm_detail {
namespace {

// MR x NR tile of accumulators; the j loop is the vector dimension. With
// SSE2 (16 xmm registers) 4 x 8 floats = 8 accumulators, 4 x 4 doubles = 8.
template <typename T, int MR, int NR>
void microkernel(int64_t K, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < K; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  if (beta == T(0)) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j];
  } else {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
  }
}

}  // namespace

// fp32, 4 x 8 tile.
//   KC = 256: B micro-panel 256*8*4 = 8 KiB in L1.
//   MC = 128: A block 128*256*4 = 128 KiB in L2.
//   NC = 4096: B panel 256*4096*4 = 4 MiB in L3.
KernelDesc<float> generic::kernel_f32() {
  return {4, 8, 128, 256, 4096, &microkernel<float, 4, 8>};
}

// fp64, 4 x 4 tile.
//   KC = 256: B micro-panel 256*4*8 = 8 KiB in L1.
//   MC = 64:  A block 64*256*8 = 128 KiB in L2.
//   NC = 2048: B panel 256*2048*8 = 4 MiB in L3.
KernelDesc<double> generic::kernel_f64() {
  return {4, 4, 64, 256, 2048, &microkernel<double, 4, 4>};
}

}  // namespace pyengine::cpu::gemm_detail
