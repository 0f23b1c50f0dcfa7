// GEMM on CUDA: C = act(alpha * op(A) * op(B) + beta * C + bias).
//
// Same contract as csrc/cpu/gemm.h, with device pointers and a stream:
//   op(A) is M x K: element (i, k) is A[i*lda + k], or A[k*lda + i] if transA.
//   op(B) is K x N: element (k, j) is B[k*ldb + j], or B[j*ldb + k] if transB.
//   C is M x N: element (i, j) is C[i*ldc + j]; it is overwritten.
//   beta == 0 means C is not read (NaN/Inf there do not propagate), as BLAS.
//   alpha == 0 means A and B are not read, as BLAS.
//   The epilogue applies in order: alpha*AB, + beta*C, + bias, then act.
//   Leading dimensions must be >= the row length they step over (checked by
//   the bindings, not here). M, N or K may be 0; K == 0 gives beta*C + bias.
// Batched: matrix b of A starts at A + b*strideA (likewise B, C); strides may
// be 0 for A and B (broadcast), never for C when batch > 1. The bias is the
// same for every matrix of the batch.
// Stream: the kernel is enqueued on `stream` and nothing synchronizes; the
// caller keeps A, B, C and bias alive until the stream has run it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyengine::cuda {

// Same values as pyengine::cpu::Act / BiasKind, so one integer means the same
// thing to _C and _cuda.
enum class Act : int { None = 0, ReLU = 1, GELU = 2 };  // GELU: exact, 0.5x(1+erf(x/sqrt2))
enum class BiasKind : int { None = 0, PerRow = 1, PerCol = 2 };  // length M / length N

template <typename T>
struct Epilogue {
  const T* bias = nullptr;
  BiasKind bias_kind = BiasKind::None;
  Act act = Act::None;
};

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>& ep,
          cudaStream_t stream);

template <typename T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>& ep, cudaStream_t stream);

// Which block tile the float32 kernel uses. Auto picks 128x128 when that gives
// at least one block per SM, else 64x64. Tests force each one so that every
// path runs on one machine (like PYENGINE_CPU_ISA for the CPU kernels).
// float64 always uses 64x64.
enum class GemmTile : int { Auto = 0, Large = 1, Small = 2 };
void set_gemm_tile(GemmTile tile);
GemmTile get_gemm_tile();

}  // namespace pyengine::cuda
