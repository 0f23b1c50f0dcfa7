// GEMM on the CPU: C = act(alpha * op(A) * op(B) + beta * C + bias).
//
// Contract (row-major, like C arrays):
//   op(A) is M x K: element (i, k) is A[i*lda + k], or A[k*lda + i] if transA.
//   op(B) is K x N: element (k, j) is B[k*ldb + j], or B[j*ldb + k] if transB.
//   C is M x N: element (i, j) is C[i*ldc + j]; it is overwritten.
//   beta == 0 means C is not read (NaN/Inf there do not propagate), as BLAS.
//   alpha == 0 (or K == 0) means A and B are not read: C = beta*C + bias, as BLAS.
//   The epilogue applies in order: alpha*AB, + beta*C, + bias, then act.
//   Leading dimensions must be >= the row length they step over (checked by
//   the bindings, not here). M, N or K may be 0; K == 0 gives beta*C + bias.
// Batched: matrix b of A starts at A + b*strideA (likewise B, C); strides may
// be 0 for A and B (broadcast), never for C when batch > 1.
// Threads: OpenMP, pyengine::get_num_threads(); the caller holds no GIL.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

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
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const Epilogue<T>& ep = {});

template <typename T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>& ep = {});

}  // namespace pyengine::cpu
