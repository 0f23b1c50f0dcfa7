// LSTM / GRU layers on CUDA: the time loop, fused pointwise kernels (forward and
// backward) and the GEMMs of cuda/gemm.h. Contract: cuda/lstm.h.
#include <algorithm>
#include <cstdint>

#include "common.cuh"
#include "gemm.h"
#include "lstm.h"

namespace pyengine::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
__device__ __forceinline__ float th(float x) { return tanhf(x); }
__device__ __forceinline__ double th(double x) { return tanh(x); }

// Row arithmetic of RnnShape (cpu/lstm.h), usable on host and device.
struct Rows {
  int64_t T, N;
  bool batch_first, reverse;
  __host__ __device__ int64_t first(int64_t t) const { return batch_first ? t : t * N; }
  __host__ __device__ int64_t stride() const { return batch_first ? T : 1; }
  __host__ __device__ int64_t step(int64_t k) const { return reverse ? T - 1 - k : k; }
};

__device__ __forceinline__ bool active(const int64_t* lengths, int64_t t, int64_t n) {
  return lengths == nullptr || t < lengths[n];
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

template <typename T>
__global__ void copy_rows_kernel(int64_t N, int64_t H, const T* src, int64_t lds, T* dst,
                                 int64_t ldd) {
  const int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, j = i % H;
  dst[n * ldd + j] = src[n * lds + j];
}

// One (n, j): gates g (pre-activations + b_hh) -> activations, c, h, y.
template <typename T>
__global__ void lstm_fwd_kernel(int64_t N, int64_t H, int64_t t, const int64_t* lengths, T* g,
                                int64_t ldg, const T* b_hh, const T* cp, int64_t ldcp, T* c,
                                const T* hp, int64_t ldh, T* hnext, int64_t ldhn, T* y,
                                int64_t ldy_row) {
  const int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, j = i % H;
  T* gr = g + n * ldg;
  if (!active(lengths, t, n)) {
    c[n * ldh + j] = cp[n * ldcp + j];
    hnext[n * ldhn + j] = hp[n * ldh + j];
    if (y) y[n * ldy_row + j] = T(0);
    return;
  }
  T a[4];
  for (int q = 0; q < 4; ++q) a[q] = gr[q * H + j] + (b_hh ? b_hh[q * H + j] : T(0));
  const T gi = sigm(a[0]), gf = sigm(a[1]), gg = th(a[2]), go = sigm(a[3]);
  gr[j] = gi;
  gr[H + j] = gf;
  gr[2 * H + j] = gg;
  gr[3 * H + j] = go;
  const T cn = gf * cp[n * ldcp + j] + gi * gg;
  const T hn = go * th(cn);
  c[n * ldh + j] = cn;
  hnext[n * ldhn + j] = hn;
  if (y) y[n * ldy_row + j] = hn;
}

template <typename T>
__global__ void lstm_bwd_kernel(int64_t N, int64_t H, int64_t t, const int64_t* lengths, const T* g,
                                int64_t ldg, const T* c, int64_t ldh, const T* cp, int64_t ldcp,
                                const T* dy, int64_t ldy_row, T* dh, T* dc, T* dg) {
  const int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, j = i % H;
  T* dgr = dg + n * ldg;
  if (!active(lengths, t, n)) {
    for (int q = 0; q < 4; ++q) dgr[q * H + j] = T(0);
    return;
  }
  const T* gr = g + n * ldg;
  const T gi = gr[j], gf = gr[H + j], gg = gr[2 * H + j], go = gr[3 * H + j];
  const T dht = dh[n * H + j] + (dy ? dy[n * ldy_row + j] : T(0));
  const T tc = th(c[n * ldh + j]);
  const T dct = dc[n * H + j] + dht * go * (T(1) - tc * tc);
  dgr[j] = dct * gg * gi * (T(1) - gi);
  dgr[H + j] = dct * cp[n * ldcp + j] * gf * (T(1) - gf);
  dgr[2 * H + j] = dct * gi * (T(1) - gg * gg);
  dgr[3 * H + j] = dht * tc * go * (T(1) - go);
  dc[n * H + j] = dct * gf;
  dh[n * H + j] = T(0);  // the GEMM adds dgates W_hh
}

template <typename T>
__global__ void gru_fwd_kernel(int64_t N, int64_t H, int64_t t, const int64_t* lengths, T* g,
                               int64_t ldg, const T* gh, const T* hp, int64_t ldh, T* hn, T* hnext,
                               int64_t ldhn, T* y, int64_t ldy_row) {
  const int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, j = i % H;
  if (!active(lengths, t, n)) {
    hnext[n * ldhn + j] = hp[n * ldh + j];
    if (y) y[n * ldy_row + j] = T(0);
    return;
  }
  T* gr = g + n * ldg;
  const T* ghr = gh + n * 3 * H;
  const T r = sigm(gr[j] + ghr[j]);
  const T z = sigm(gr[H + j] + ghr[H + j]);
  const T ghn = ghr[2 * H + j];
  const T nn = th(gr[2 * H + j] + r * ghn);
  const T h = (T(1) - z) * nn + z * hp[n * ldh + j];
  gr[j] = r;
  gr[H + j] = z;
  gr[2 * H + j] = nn;
  hn[n * ldh + j] = ghn;
  hnext[n * ldhn + j] = h;
  if (y) y[n * ldy_row + j] = h;
}

template <typename T>
__global__ void gru_bwd_kernel(int64_t N, int64_t H, int64_t t, const int64_t* lengths, const T* g,
                               int64_t ldg, const T* hn, const T* hp, int64_t ldh, const T* dy,
                               int64_t ldy_row, T* dh, T* dgi, T* dgh) {
  const int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (i >= N * H) return;
  const int64_t n = i / H, j = i % H;
  T* dgir = dgi + n * ldg;
  T* dghr = dgh + n * ldg;
  if (!active(lengths, t, n)) {
    for (int q = 0; q < 3; ++q) dgir[q * H + j] = dghr[q * H + j] = T(0);
    return;
  }
  const T* gr = g + n * ldg;
  const T r = gr[j], z = gr[H + j], nn = gr[2 * H + j];
  const T dht = dh[n * H + j] + (dy ? dy[n * ldy_row + j] : T(0));
  const T dnp = dht * (T(1) - z) * (T(1) - nn * nn);
  const T dzp = dht * (hp[n * ldh + j] - nn) * z * (T(1) - z);
  const T drp = dnp * hn[n * ldh + j] * r * (T(1) - r);
  dgir[j] = drp;
  dgir[H + j] = dzp;
  dgir[2 * H + j] = dnp;
  dghr[j] = drp;
  dghr[H + j] = dzp;
  dghr[2 * H + j] = dnp * r;
  dh[n * H + j] = dht * z;  // the GEMM adds dgh W_hh
}

// Bias gradients: out[j] = sum_r a[r*ld + j] (overwrite), in two launches so that the T*N
// rows keep every multiprocessor busy (one thread per column walking all rows used only
// cols / 256 blocks). Partial sums: block (bx, s) takes columns [32 bx, 32 bx + 32) (one per
// lane: a warp reads 32 consecutive values of a row) and rows [rows s / S, rows (s + 1) / S),
// its 8 warps taking every 8th row; it OVERWRITES part[s * cols + j].
constexpr int kSumCols = 32;
constexpr int kSumWarps = kThreads / 32;

template <typename T>
__global__ void column_sums_partial_kernel(int64_t rows, int64_t cols, const T* a, int64_t ld,
                                           int64_t S, T* part) {
  __shared__ T sums[kSumWarps][kSumCols];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kSumCols + lane, s = blockIdx.y;
  const int64_t r0 = rows * s / S, r1 = rows * (s + 1) / S;
  T acc = T(0);
  if (j < cols)
    for (int64_t r = r0 + warp; r < r1; r += kSumWarps) acc += a[r * ld + j];
  sums[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && j < cols) {
    T t = T(0);
    for (int w = 0; w < kSumWarps; ++w) t += sums[w][lane];  // a fixed order: deterministic
    part[s * cols + j] = t;
  }
}

// out[j] (OVERWRITTEN) = the S partial sums of column j in slice order.
template <typename T>
__global__ void column_sums_finalize_kernel(int64_t cols, int64_t S, const T* part, T* out) {
  const int64_t j = blockIdx.x * int64_t(kThreads) + threadIdx.x;
  if (j >= cols) return;
  T acc = T(0);
  for (int64_t s = 0; s < S; ++s) acc += part[s * cols + j];
  out[j] = acc;
}

template <typename T>
void column_sums(int64_t rows, int64_t cols, const T* a, int64_t ld, T* out, cudaStream_t stream,
                 const char* op) {
  if (cols == 0) return;
  const int64_t bx = (cols + kSumCols - 1) / kSumCols;
  // at least 32 rows per slice, and grid.y's limit
  const int64_t S = slices_per_group(bx, std::min<int64_t>((rows + 31) / 32, 65535), op);
  StreamScratch part(static_cast<size_t>(S * cols) * sizeof(T), stream, op);
  column_sums_partial_kernel<T>
      <<<dim3(static_cast<unsigned>(bx), static_cast<unsigned>(S)), kThreads, 0, stream>>>(
          rows, cols, a, ld, S, part.as<T>());
  PE_CUDA_CHECK_LAUNCH(op);
  column_sums_finalize_kernel<T>
      <<<blocks_for(cols), kThreads, 0, stream>>>(cols, S, part.as<T>(), out);
  PE_CUDA_CHECK_LAUNCH(op);
}

template <typename T>
void init_state(T* dst, const T* src, int64_t n, cudaStream_t stream, const char* op) {
  if (src)
    PE_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, stream), op);
  else
    PE_CUDA_CHECK(cudaMemsetAsync(dst, 0, n * sizeof(T), stream), op);
}

template <typename T>
Epilogue<T> col_bias(const T* b) {
  Epilogue<T> ep;
  if (b) {
    ep.bias = b;
    ep.bias_kind = BiasKind::PerCol;
  }
  return ep;
}

}  // namespace

template <typename T>
void lstm_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                        const T* b_hh, const T* h0, const T* c0, T* y, int64_t ldy, T* h_n, T* c_n,
                        T* gates, T* cs, T* hs, cudaStream_t stream) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N;
  if (N == 0) return;
  const Rows R{s.T, N, s.batch_first, s.reverse};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  gemm<T>(false, true, TN, G, s.I, T(1), x, s.I, w_ih, s.I, T(0), gates, G, col_bias(b_ih), stream);
  copy_rows_kernel<T>
      <<<blocks_for(N * H), kThreads, 0, stream>>>(N, H, h0, H, hs + R.first(R.step(0)) * H, ldh);
  PE_CUDA_CHECK_LAUNCH("lstm");
  for (int64_t k = 0; k < s.T; ++k) {
    const int64_t t = R.step(k);
    T* g_t = gates + R.first(t) * G;
    const T* hp_t = hs + R.first(t) * H;
    const T* cp = k == 0 ? c0 : cs + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    gemm<T>(false, true, N, G, H, T(1), hp_t, ldh, w_hh, H, T(1), g_t, ldg, Epilogue<T>{}, stream);
    lstm_fwd_kernel<T><<<blocks_for(N * H), kThreads, 0, stream>>>(
        N, H, t, s.lengths, g_t, ldg, b_hh, cp, ldcp, cs + R.first(t) * H, hp_t, ldh, hnext, ldhn,
        y ? y + R.first(t) * ldy : nullptr, rs * ldy);
    PE_CUDA_CHECK_LAUNCH("lstm");
  }
  copy_rows_kernel<T><<<blocks_for(N * H), kThreads, 0, stream>>>(
      N, H, cs + R.first(R.step(s.T - 1)) * H, ldh, c_n, H);
  PE_CUDA_CHECK_LAUNCH("lstm");
}

template <typename T>
void lstm_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* c0,
                         const T* gates, const T* cs, const T* hs, const T* dy, int64_t ldy,
                         const T* dh_n, const T* dc_n, T* dx, bool dx_accumulate, T* dh0, T* dc0,
                         T* dw_ih, T* dw_hh, T* db, T* dgates, cudaStream_t stream) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N;
  const Rows R{s.T, N, s.batch_first, s.reverse};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  init_state(dh0, dh_n, N * H, stream, "lstm");
  init_state(dc0, dc_n, N * H, stream, "lstm");
  for (int64_t k = s.T - 1; k >= 0 && N > 0; --k) {
    const int64_t t = R.step(k);
    const T* cp = k == 0 ? c0 : cs + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* dg_t = dgates + R.first(t) * G;
    lstm_bwd_kernel<T><<<blocks_for(N * H), kThreads, 0, stream>>>(
        N, H, t, s.lengths, gates + R.first(t) * G, ldg, cs + R.first(t) * H, ldh, cp, ldcp,
        dy ? dy + R.first(t) * ldy : nullptr, rs * ldy, dh0, dc0, dg_t);
    PE_CUDA_CHECK_LAUNCH("lstm");
    gemm<T>(false, false, N, H, G, T(1), dg_t, ldg, w_hh, H, T(1), dh0, H, Epilogue<T>{}, stream);
  }
  gemm<T>(true, false, G, s.I, TN, T(1), dgates, G, x, s.I, T(0), dw_ih, s.I, Epilogue<T>{},
          stream);
  gemm<T>(true, false, G, H, TN, T(1), dgates, G, hs, H, T(0), dw_hh, H, Epilogue<T>{}, stream);
  if (db) column_sums(TN, G, dgates, G, db, stream, "lstm");
  if (dx)
    gemm<T>(false, false, TN, s.I, G, T(1), dgates, G, w_ih, s.I, dx_accumulate ? T(1) : T(0), dx,
            s.I, Epilogue<T>{}, stream);
}

template <typename T>
void gru_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                       const T* b_hh, const T* h0, T* y, int64_t ldy, T* h_n, T* gates, T* hn,
                       T* hs, T* gh, cudaStream_t stream) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  if (N == 0) return;
  const Rows R{s.T, N, s.batch_first, s.reverse};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  gemm<T>(false, true, TN, G, s.I, T(1), x, s.I, w_ih, s.I, T(0), gates, G, col_bias(b_ih), stream);
  copy_rows_kernel<T>
      <<<blocks_for(N * H), kThreads, 0, stream>>>(N, H, h0, H, hs + R.first(R.step(0)) * H, ldh);
  PE_CUDA_CHECK_LAUNCH("gru");
  for (int64_t k = 0; k < s.T; ++k) {
    const int64_t t = R.step(k);
    const T* hp_t = hs + R.first(t) * H;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    gemm<T>(false, true, N, G, H, T(1), hp_t, ldh, w_hh, H, T(0), gh, G, col_bias(b_hh), stream);
    gru_fwd_kernel<T><<<blocks_for(N * H), kThreads, 0, stream>>>(
        N, H, t, s.lengths, gates + R.first(t) * G, ldg, gh, hp_t, ldh, hn + R.first(t) * H, hnext,
        ldhn, y ? y + R.first(t) * ldy : nullptr, rs * ldy);
    PE_CUDA_CHECK_LAUNCH("gru");
  }
}

template <typename T>
void gru_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                        const T* hn, const T* hs, const T* dy, int64_t ldy, const T* dh_n, T* dx,
                        bool dx_accumulate, T* dh0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* dgi,
                        T* dgh, cudaStream_t stream) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  const Rows R{s.T, N, s.batch_first, s.reverse};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  init_state(dh0, dh_n, N * H, stream, "gru");
  for (int64_t k = s.T - 1; k >= 0 && N > 0; --k) {
    const int64_t t = R.step(k);
    T* dgh_t = dgh + R.first(t) * G;
    gru_bwd_kernel<T><<<blocks_for(N * H), kThreads, 0, stream>>>(
        N, H, t, s.lengths, gates + R.first(t) * G, ldg, hn + R.first(t) * H, hs + R.first(t) * H,
        ldh, dy ? dy + R.first(t) * ldy : nullptr, rs * ldy, dh0, dgi + R.first(t) * G, dgh_t);
    PE_CUDA_CHECK_LAUNCH("gru");
    gemm<T>(false, false, N, H, G, T(1), dgh_t, ldg, w_hh, H, T(1), dh0, H, Epilogue<T>{}, stream);
  }
  gemm<T>(true, false, G, s.I, TN, T(1), dgi, G, x, s.I, T(0), dw_ih, s.I, Epilogue<T>{}, stream);
  gemm<T>(true, false, G, H, TN, T(1), dgh, G, hs, H, T(0), dw_hh, H, Epilogue<T>{}, stream);
  if (db_ih) column_sums(TN, G, dgi, G, db_ih, stream, "gru");
  if (db_hh) column_sums(TN, G, dgh, G, db_hh, stream, "gru");
  if (dx)
    gemm<T>(false, false, TN, s.I, G, T(1), dgi, G, w_ih, s.I, dx_accumulate ? T(1) : T(0), dx, s.I,
            Epilogue<T>{}, stream);
}

#define PE_INSTANTIATE(T)                                                                         \
  template void lstm_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,    \
                                      const T*, const T*, const T*, T*, int64_t, T*, T*, T*, T*,  \
                                      T*, cudaStream_t);                                          \
  template void lstm_layer_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,   \
                                       const T*, const T*, const T*, const T*, int64_t, const T*, \
                                       const T*, T*, bool, T*, T*, T*, T*, T*, T*, cudaStream_t); \
  template void gru_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,     \
                                     const T*, const T*, T*, int64_t, T*, T*, T*, T*, T*,         \
                                     cudaStream_t);                                               \
  template void gru_layer_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,    \
                                      const T*, const T*, const T*, int64_t, const T*, T*, bool,  \
                                      T*, T*, T*, T*, T*, T*, T*, cudaStream_t);
PE_INSTANTIATE(float)
PE_INSTANTIATE(double)
#undef PE_INSTANTIATE

}  // namespace pyengine::cuda
