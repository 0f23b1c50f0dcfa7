// GEMM on CUDA, fp32 and fp64 SIMT kernels. Contract: see gemm.h (it is the
// contract of csrc/cpu/gemm.h with device pointers and a stream).
//
// Design: one block computes a BM x BN tile of C with 256 threads; each
// thread owns a TM x TN sub-tile held in registers. The K dimension is walked
// in slices of BK:
//   global -> registers (slice k+1)  while  shared -> FMA (slice k)
//   registers -> shared (the other buffer), one __syncthreads per slice.
// Shared memory holds both operands "k-major": As[k][i] and Bs[k][j], so the
// inner loop reads a column of op(A) and a row of op(B) as short vectors and
// does a TM x TN outer product. A thread's TM rows are two groups of TM/2
// (one in each half of the tile; likewise columns), which keeps the vector
// reads of a warp on distinct, contiguous shared-memory words.
//
// Transposes are handled by the global loads only: for each operand the 256
// threads walk the slice along whichever dimension is contiguous in memory
// (k for A when !transA, i when transA; j for B when !transB, k when transB),
// so a warp's loads coalesce either way. Rows of shared memory are padded by
// 16 bytes so that the "scatter" store of the k-contiguous case hits 32
// different banks.
//
// Edges: every global load is predicated (row < M and k < K) and replaced by
// 0, so partial tiles and any M, N, K (0, 1, primes) need no special kernel.
// The epilogue stores only in-bounds elements; when C is suitably aligned
// (checked on the host for all matrices of the batch) full vectors are
// stored, else scalars.
//
// Configurations (3 instantiations in all, to keep the build short):
//   float  128x128x8, 8x8 per thread: 16.5 KiB smem, <= 128 registers so two
//          blocks fit on an SM; used when it yields >= one block per SM.
//   float   64x64x8, 4x4 per thread: more blocks for small problems.
//   double  64x64x8, 4x4 per thread (fp64 exists for gradient checks).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>

#include "common.cuh"
#include "gemm.h"

namespace pyengine::cuda {
namespace {

constexpr const char* kOp = "gemm";
constexpr int kThreads = 256;
constexpr int kMaxGridZ = 65535;

template <typename T, int N>
struct VecOf;
template <>
struct VecOf<float, 4> {
  using type = float4;
};
template <>
struct VecOf<float, 2> {
  using type = float2;
};
template <>
struct VecOf<double, 2> {
  using type = double2;
};

// N contiguous elements, src aligned to N * sizeof(T).
template <typename T, int N>
__device__ __forceinline__ void load_vec(T* dst, const T* src) {
  using V = typename VecOf<T, N>::type;
  const V v = *reinterpret_cast<const V*>(src);
  dst[0] = v.x;
  dst[1] = v.y;
  if constexpr (N == 4) {
    dst[2] = v.z;
    dst[3] = v.w;
  }
}

template <typename T, int N>
__device__ __forceinline__ void store_vec(T* dst, const T* src) {
  using V = typename VecOf<T, N>::type;
  V v;
  v.x = src[0];
  v.y = src[1];
  if constexpr (N == 4) {
    v.z = src[2];
    v.w = src[3];
  }
  *reinterpret_cast<V*>(dst) = v;
}

template <typename T>
__device__ __forceinline__ T activate(T x, Act act) {
  if (act == Act::ReLU) return x < T(0) ? T(0) : x;  // NaN stays NaN, as PyTorch
  if (act == Act::GELU) {
    constexpr T kRsqrt2 = T(0.70710678118654752440);
    if constexpr (sizeof(T) == 4)
      return 0.5f * x * (1.0f + erff(x * kRsqrt2));
    else
      return 0.5 * x * (1.0 + erf(x * kRsqrt2));
  }
  return x;
}

template <typename T>
struct Params {
  const T* A;
  const T* B;
  T* C;
  const T* bias;
  int64_t lda, ldb, ldc;
  int64_t strideA, strideB, strideC;
  int64_t batch;
  int M, N, K;
  int tiles_n;  // number of BN-wide column tiles
  T alpha, beta;
  bool transA, transB;
  bool vec_c;  // C, ldc and strideC allow vector stores of TN/2 elements
  BiasKind bias_kind;
  Act act;
};

// blockIdx.x: output tile (row-major over tiles); blockIdx.z: batch, strided
// by gridDim.z so any batch count works.
template <typename T, int BM, int BN, int BK, int TM, int TN, int MinBlocks>
__global__ void __launch_bounds__(kThreads, MinBlocks) gemm_kernel(const Params<T> p) {
  static_assert((BM / TM) * (BN / TN) == kThreads, "one thread per TM x TN sub-tile");
  static_assert(kThreads % BM == 0 && kThreads % BN == 0 && kThreads % BK == 0, "load mapping");
  static_assert((BM * BK) % kThreads == 0 && (BN * BK) % kThreads == 0, "load mapping");
  static_assert(TM % 2 == 0 && TN % 2 == 0, "two groups per thread");
  constexpr int kPad = 16 / sizeof(T);  // 16 bytes: keeps vector alignment, spreads banks
  constexpr int kLoadsA = BM * BK / kThreads;
  constexpr int kLoadsB = BN * BK / kThreads;
  constexpr int kHM = TM / 2, kHN = TN / 2;

  __shared__ __align__(16) T As[2][BK][BM + kPad];
  __shared__ __align__(16) T Bs[2][BK][BN + kPad];

  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN);
  const int ty = tid / (BN / TN);
  const int m0 = (blockIdx.x / p.tiles_n) * BM;
  const int n0 = (blockIdx.x % p.tiles_n) * BN;
  const int num_k_tiles = p.alpha == T(0) ? 0 : (p.K + BK - 1) / BK;  // alpha == 0: skip A, B

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    const T* __restrict__ A = p.A + bz * p.strideA;
    const T* __restrict__ B = p.B + bz * p.strideB;
    T* __restrict__ C = p.C + bz * p.strideC;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    // Slice loads. The 256 threads run along the dimension that is contiguous
    // in memory (k for A if !transA, i if transA; j for B if !transB, k if
    // transB). Indices are recomputed from tid each slice (cheap integer ops
    // on constants and kernel parameters) instead of being kept in registers
    // next to the 64 accumulators.
    T ra[kLoadsA], rb[kLoadsB];
    auto load_global = [&](int k0) {
      if (p.transA) {
        const int i = m0 + tid % BM;
#pragma unroll
        for (int r = 0; r < kLoadsA; ++r) {
          const int k = k0 + tid / BM + r * (kThreads / BM);
          ra[r] = (i < p.M && k < p.K) ? __ldg(A + int64_t(k) * p.lda + i) : T(0);
        }
      } else {
        const int k = k0 + tid % BK;
#pragma unroll
        for (int r = 0; r < kLoadsA; ++r) {
          const int i = m0 + tid / BK + r * (kThreads / BK);
          ra[r] = (i < p.M && k < p.K) ? __ldg(A + int64_t(i) * p.lda + k) : T(0);
        }
      }
      if (p.transB) {
        const int k = k0 + tid % BK;
#pragma unroll
        for (int r = 0; r < kLoadsB; ++r) {
          const int j = n0 + tid / BK + r * (kThreads / BK);
          rb[r] = (j < p.N && k < p.K) ? __ldg(B + int64_t(j) * p.ldb + k) : T(0);
        }
      } else {
        const int j = n0 + tid % BN;
#pragma unroll
        for (int r = 0; r < kLoadsB; ++r) {
          const int k = k0 + tid / BN + r * (kThreads / BN);
          rb[r] = (j < p.N && k < p.K) ? __ldg(B + int64_t(k) * p.ldb + j) : T(0);
        }
      }
    };
    auto store_shared = [&](int buf) {
#pragma unroll
      for (int r = 0; r < kLoadsA; ++r) {
        if (p.transA)
          As[buf][tid / BM + r * (kThreads / BM)][tid % BM] = ra[r];
        else
          As[buf][tid % BK][tid / BK + r * (kThreads / BK)] = ra[r];
      }
#pragma unroll
      for (int r = 0; r < kLoadsB; ++r) {
        if (p.transB)
          Bs[buf][tid % BK][tid / BK + r * (kThreads / BK)] = rb[r];
        else
          Bs[buf][tid / BN + r * (kThreads / BN)][tid % BN] = rb[r];
      }
    };

    if (num_k_tiles > 0) {
      load_global(0);
      store_shared(0);
      __syncthreads();
    }
    for (int kt = 0; kt < num_k_tiles; ++kt) {
      const int cur = kt & 1;
      const bool has_next = kt + 1 < num_k_tiles;
      if (has_next) load_global((kt + 1) * BK);  // in flight during the FMAs below
#pragma unroll
      for (int k = 0; k < BK; ++k) {
        T a[TM], b[TN];
        load_vec<T, kHM>(a, &As[cur][k][ty * kHM]);
        load_vec<T, kHM>(a + kHM, &As[cur][k][BM / 2 + ty * kHM]);
        load_vec<T, kHN>(b, &Bs[cur][k][tx * kHN]);
        load_vec<T, kHN>(b + kHN, &Bs[cur][k][BN / 2 + tx * kHN]);
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
      }
      // The other buffer was last read in iteration kt-1, which every thread
      // finished before the barrier that ended it.
      if (has_next) store_shared(cur ^ 1);
      __syncthreads();
    }

    // Epilogue: alpha*AB (+ beta*C) (+ bias) then act, in-bounds only.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int gi = m0 + (i < kHM ? ty * kHM + i : BM / 2 + ty * kHM + (i - kHM));
      if (gi >= p.M) continue;
      T* crow = C + int64_t(gi) * p.ldc;
      const T row_bias = p.bias_kind == BiasKind::PerRow ? p.bias[gi] : T(0);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int gj0 = n0 + h * (BN / 2) + tx * kHN;
        T v[kHN];
#pragma unroll
        for (int j = 0; j < kHN; ++j) v[j] = p.alpha * acc[i][h * kHN + j];
        if (p.vec_c && gj0 + kHN <= p.N) {
          if (p.beta != T(0)) {
            T c[kHN];
            load_vec<T, kHN>(c, crow + gj0);
#pragma unroll
            for (int j = 0; j < kHN; ++j) v[j] += p.beta * c[j];
          }
#pragma unroll
          for (int j = 0; j < kHN; ++j) {
            v[j] += row_bias;
            if (p.bias_kind == BiasKind::PerCol) v[j] += p.bias[gj0 + j];
            v[j] = activate(v[j], p.act);
          }
          store_vec<T, kHN>(crow + gj0, v);
        } else {
#pragma unroll
          for (int j = 0; j < kHN; ++j) {
            const int gj = gj0 + j;
            if (gj >= p.N) continue;
            T x = v[j];
            if (p.beta != T(0)) x += p.beta * crow[gj];
            x += row_bias;
            if (p.bias_kind == BiasKind::PerCol) x += p.bias[gj];
            crow[gj] = activate(x, p.act);
          }
        }
      }
    }
  }
}

template <typename T, int BM, int BN, int BK, int TM, int TN, int MinBlocks>
void launch(Params<T> p, cudaStream_t stream) {
  const int64_t tiles_m = (int64_t(p.M) + BM - 1) / BM;
  const int64_t tiles_n = (int64_t(p.N) + BN - 1) / BN;
  PE_CHECK(tiles_m * tiles_n <= INT_MAX, kOp, "M x N = ", p.M, " x ", p.N,
           " is too large for one launch");
  p.tiles_n = int(tiles_n);
  constexpr int kVec = TN / 2;
  const auto c_addr = reinterpret_cast<std::uintptr_t>(p.C);
  p.vec_c = c_addr % (kVec * sizeof(T)) == 0 && p.ldc % kVec == 0 &&
            (p.batch <= 1 || p.strideC % kVec == 0);
  const dim3 grid(unsigned(tiles_m * tiles_n), 1, unsigned(std::min<int64_t>(p.batch, kMaxGridZ)));
  gemm_kernel<T, BM, BN, BK, TM, TN, MinBlocks><<<grid, kThreads, 0, stream>>>(p);
  PE_CUDA_CHECK_LAUNCH(kOp);
}

std::atomic<int> g_tile{int(GemmTile::Auto)};

void dispatch(Params<float> p, cudaStream_t stream) {
  auto tile = GemmTile(g_tile.load(std::memory_order_relaxed));
  if (tile == GemmTile::Auto) {
    const int64_t blocks = ((int64_t(p.M) + 127) / 128) * ((int64_t(p.N) + 127) / 128) *
                           std::min<int64_t>(p.batch, kMaxGridZ);
    tile = blocks >= sm_count(kOp) ? GemmTile::Large : GemmTile::Small;
  }
  if (tile == GemmTile::Large)
    launch<float, 128, 128, 8, 8, 8, 2>(p, stream);
  else
    launch<float, 64, 64, 8, 4, 4, 2>(p, stream);
}

void dispatch(Params<double> p, cudaStream_t stream) {
  launch<double, 64, 64, 8, 4, 4, 2>(p, stream);
}

// ---- split K -----------------------------------------------------------------------------
// A product with few output tiles over a deep K (an LSTM step's 64 x 512 over K = 2048 is 8
// tiles of 64x64 for 132 SMs) runs K in S slices: one strided-batched launch writes each slice's
// M x N partial product into scratch (alpha 1, beta 0, no epilogue; a shorter last slice is a
// second launch), then split_k_reduce_kernel adds the partials in slice order (deterministic)
// and applies alpha, beta, bias and act as the one-pass epilogue does. S gives about two blocks
// per SM, each slice at least kMinSliceK deep.
constexpr int64_t kMinSliceK = 128;

int64_t split_k_slices(int M, int N, int K) {
  const int64_t tiles = ((int64_t(M) + 63) / 64) * ((int64_t(N) + 63) / 64);
  const int64_t want = 2 * int64_t(sm_count(kOp)) / tiles;
  return std::max<int64_t>(1, std::min<int64_t>(want, K / kMinSliceK));
}

// C[i, j] (OVERWRITTEN) = act(alpha * sum_s part[s][i, j] + beta * C[i, j] + bias), the S
// partials (M x N each, rows N apart) added in slice order.
template <typename T>
__global__ void split_k_reduce_kernel(Params<T> p, int64_t S, const T* part) {
  const int64_t MN = int64_t(p.M) * p.N;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < MN;
       e += int64_t(gridDim.x) * blockDim.x) {
    T acc = T(0);
    for (int64_t s = 0; s < S; ++s) acc += part[s * MN + e];
    const int64_t i = e / p.N, j = e % p.N;
    T* c = p.C + i * p.ldc + j;
    T x = p.alpha * acc;
    if (p.beta != T(0)) x += p.beta * *c;
    if (p.bias_kind == BiasKind::PerRow) x += p.bias[i];
    if (p.bias_kind == BiasKind::PerCol) x += p.bias[j];
    *c = activate(x, p.act);
  }
}

template <typename T>
void gemm_split_k(const Params<T>& p, int64_t S, cudaStream_t stream) {
  const int64_t kc = (p.K + S - 1) / S, full = p.K / kc, tail = p.K - full * kc;
  const int64_t slices = full + (tail > 0 ? 1 : 0), MN = int64_t(p.M) * p.N;
  StreamScratch part(static_cast<size_t>(slices * MN) * sizeof(T), stream, kOp);
  Params<T> q = p;  // slice s: op(A)[:, s kc : (s+1) kc] * op(B)[s kc : (s+1) kc, :]
  q.C = part.as<T>();
  q.ldc = p.N;
  q.strideC = MN;
  q.alpha = T(1);
  q.beta = T(0);
  q.bias = nullptr;
  q.bias_kind = BiasKind::None;
  q.act = Act::None;
  q.K = int(kc);
  q.batch = full;
  q.strideA = p.transA ? kc * p.lda : kc;  // op(A)(i, k) is A[k*lda + i] or A[i*lda + k]
  q.strideB = p.transB ? kc : kc * p.ldb;  // op(B)(k, j) is B[j*ldb + k] or B[k*ldb + j]
  dispatch(q, stream);
  if (tail > 0) {
    Params<T> t = q;
    t.K = int(tail);
    t.batch = 1;
    t.A = p.A + full * q.strideA;
    t.B = p.B + full * q.strideB;
    t.C = q.C + full * MN;
    dispatch(t, stream);
  }
  const int64_t blocks = std::min<int64_t>((MN + kThreads - 1) / kThreads, 4 * sm_count(kOp));
  split_k_reduce_kernel<T><<<unsigned(blocks), kThreads, 0, stream>>>(p, slices, part.as<T>());
  PE_CUDA_CHECK_LAUNCH(kOp);
}

}  // namespace

void set_gemm_tile(GemmTile tile) { g_tile.store(int(tile), std::memory_order_relaxed); }
GemmTile get_gemm_tile() { return GemmTile(g_tile.load(std::memory_order_relaxed)); }

template <typename T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>& ep, cudaStream_t stream) {
  PE_CHECK(M >= 0 && N >= 0 && K >= 0 && batch >= 0, kOp, "sizes must be >= 0 but are M=", M,
           " N=", N, " K=", K, " batch=", batch);
  PE_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX, kOp,
           "M, N and K must be < 2^31 but are M=", M, " N=", N, " K=", K);
  if (M == 0 || N == 0 || batch == 0) return;
  Params<T> p{};
  p.A = A;
  p.B = B;
  p.C = C;
  p.bias = ep.bias;
  p.lda = lda;
  p.ldb = ldb;
  p.ldc = ldc;
  p.strideA = strideA;
  p.strideB = strideB;
  p.strideC = strideC;
  p.batch = batch;
  p.M = int(M);
  p.N = int(N);
  p.K = int(K);
  p.alpha = alpha;
  p.beta = beta;
  p.transA = transA;
  p.transB = transB;
  p.bias_kind = ep.bias ? ep.bias_kind : BiasKind::None;
  p.act = ep.act;
  const int64_t S = batch == 1 && alpha != T(0) ? split_k_slices(p.M, p.N, p.K) : 1;
  if (S > 1)
    gemm_split_k(p, S, stream);
  else
    dispatch(p, stream);
}

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>& ep,
          cudaStream_t stream) {
  gemm_strided_batched<T>(transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
                          ep, stream);
}

#define PE_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t, const Epilogue<T>&, cudaStream_t);            \
  template void gemm_strided_batched<T>(                                                       \
      bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t, const T*, int64_t, \
      int64_t, T, T*, int64_t, int64_t, int64_t, const Epilogue<T>&, cudaStream_t);
PE_INSTANTIATE(float)
PE_INSTANTIATE(double)
#undef PE_INSTANTIATE

}  // namespace pyengine::cuda
