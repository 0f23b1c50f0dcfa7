// Pooling on CUDA (contract in cuda/pool.h and csrc/cpu/pool.h). One thread per output
// element (forward) or per input element (gather-form backward), grid-stride loops over
// int64 element counts, 256 threads per block. Pooling is memory-bound; these kernels read
// each window straight from global memory (L1/L2 serve the overlap between windows).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "common.cuh"
#include "pool.h"

namespace pyengine::cuda {
namespace pool_detail {

// The body of every kernel is a __host__ __device__ function of one element index e, so
// tests/cuda_emu/pool_emu.cu can run the kernels' own arithmetic on a machine without a GPU.
#define PE_HD __host__ __device__ __forceinline__

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 8));
}

#define PE_GRID_LOOP(i, n)                                                               \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

PE_HD int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
PE_HD int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
PE_HD int64_t ada_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
PE_HD int64_t ada_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
PE_HD T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// PyTorch's max rule: a strictly larger value or a NaN takes over.
template <typename T>
PE_HD bool takes(T v, T best) {
  return v > best || v != v;
}

// ---- max pooling -------------------------------------------------------------------------
template <typename T>
PE_HD void max_pool_elem(const Pool2d& g, const T* x, T* y, int64_t* idx, int64_t e) {
  const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH);
  const T* xp = x + p * g.H * g.W;
  const int64_t hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
  int64_t h0 = hs, w0 = ws;
  while (h0 < 0) h0 += g.dH;
  while (w0 < 0) w0 += g.dW;
  T best = neg_inf<T>();
  int64_t bi = h0 * g.W + w0;  // PyTorch's index when nothing beats -inf
  for (int64_t kh = 0; kh < g.kH; ++kh) {
    const int64_t ih = hs + kh * g.dH;
    if (ih < 0 || ih >= g.H) continue;
    for (int64_t kw = 0; kw < g.kW; ++kw) {
      const int64_t iw = ws + kw * g.dW;
      if (iw < 0 || iw >= g.W) continue;
      const T v = xp[ih * g.W + iw];
      if (takes(v, best)) {
        best = v;
        bi = ih * g.W + iw;
      }
    }
  }
  y[e] = best;
  if (idx) idx[e] = bi;
}

template <typename T>
PE_HD void adaptive_max_elem(int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y,
                             int64_t* idx, int64_t e) {
  const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
  const T* xp = x + p * H * W;
  const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
  const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
  T best = neg_inf<T>();
  int64_t bi = h0 * W + w0;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) {
      const T v = xp[ih * W + iw];
      if (takes(v, best)) {
        best = v;
        bi = ih * W + iw;
      }
    }
  y[e] = best;
  if (idx) idx[e] = bi;
}

// gx zeroed before; gx[p][idx] += gy for output e (atomicAdd on the device).
template <typename T>
PE_HD void scatter_add_elem(int64_t in_hw, int64_t out_hw, const T* gy, const int64_t* idx, T* gx,
                            int64_t e) {
  const int64_t i = idx[e];
  if (i < 0 || i >= in_hw) return;
  T* dst = gx + (e / out_hw) * in_hw + i;
#ifdef __CUDA_ARCH__
  atomicAdd(dst, gy[e]);
#else
  *dst += gy[e];
#endif
}

template <typename T>
PE_HD void gather_elem(int64_t src_hw, int64_t out_hw, const T* src, const int64_t* idx, T* out,
                       int64_t e) {
  const int64_t i = idx[e];
  out[e] = (i >= 0 && i < src_hw) ? src[(e / out_hw) * src_hw + i] : T(0);
}

// ---- average pooling ---------------------------------------------------------------------
PE_HD int64_t avg_divisor(const Pool2d& g, int64_t oh, int64_t ow, bool cip, int64_t div_override) {
  if (div_override != 0) return div_override;
  const int64_t hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
  const int64_t he = imin(hs + g.kH, g.H + g.pH), we = imin(ws + g.kW, g.W + g.pW);
  const int64_t cnt =
      cip ? (he - hs) * (we - ws) : (imin(he, g.H) - imax(hs, 0)) * (imin(we, g.W) - imax(ws, 0));
  return cnt > 0 ? cnt : 1;
}

template <typename T>
PE_HD void avg_fwd_elem(const Pool2d& g, bool cip, int64_t div_override, const T* x, T* y,
                        int64_t e) {
  const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH);
  const T* xp = x + p * g.H * g.W;
  const int64_t hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
  const int64_t h0 = imax(hs, 0), h1 = imin(hs + g.kH, g.H);
  const int64_t w0 = imax(ws, 0), w1 = imin(ws + g.kW, g.W);
  T s = 0;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * g.W + iw];
  y[e] = s / static_cast<T>(avg_divisor(g, oh, ow, cip, div_override));
}

// Gather form: input element e sums gy / divisor over the windows that contain it.
template <typename T>
PE_HD void avg_bwd_elem(const Pool2d& g, bool cip, int64_t div_override, const T* gy, T* gx,
                        int64_t e) {
  const int64_t iw = e % g.W, ih = (e / g.W) % g.H, p = e / (g.W * g.H);
  const T* gp = gy + p * g.OH * g.OW;
  T s = 0;
  for (int64_t kh = 0; kh < g.kH; ++kh) {
    const int64_t t = ih + g.pH - kh;  // = oh * sH when tap kh of row oh is ih
    if (t < 0 || t % g.sH) continue;
    const int64_t oh = t / g.sH;
    if (oh >= g.OH) continue;
    for (int64_t kw = 0; kw < g.kW; ++kw) {
      const int64_t u = iw + g.pW - kw;
      if (u < 0 || u % g.sW) continue;
      const int64_t ow = u / g.sW;
      if (ow >= g.OW) continue;
      s += gp[oh * g.OW + ow] / static_cast<T>(avg_divisor(g, oh, ow, cip, div_override));
    }
  }
  gx[e] = s;
}

template <typename T>
PE_HD void adaptive_avg_fwd_elem(int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y,
                                 int64_t e) {
  const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
  const T* xp = x + p * H * W;
  const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
  const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
  T s = 0;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * W + iw];
  y[e] = s / static_cast<T>((h1 - h0) * (w1 - w0));
}

// The windows containing row ih are exactly oh in [floor(ih*OH/H), ceil((ih+1)*OH/H)).
template <typename T>
PE_HD void adaptive_avg_bwd_elem(int64_t H, int64_t W, int64_t OH, int64_t OW, const T* gy, T* gx,
                                 int64_t e) {
  const int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
  const T* gp = gy + p * OH * OW;
  const int64_t oh0 = (ih * OH) / H, oh1 = ((ih + 1) * OH + H - 1) / H;
  const int64_t ow0 = (iw * OW) / W, ow1 = ((iw + 1) * OW + W - 1) / W;
  T s = 0;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
    if (ih < h0 || ih >= h1) continue;
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
      if (iw < w0 || iw >= w1) continue;
      s += gp[oh * OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
    }
  }
  gx[e] = s;
}

// ---- unpooling and upsampling --------------------------------------------------------------
template <typename T>
PE_HD void unpool_elem(int64_t in_hw, int64_t out_hw, const T* x, const int64_t* idx, T* y,
                       int64_t e) {
  const int64_t o = idx[e];
  if (o >= 0 && o < out_hw) y[(e / in_hw) * out_hw + o] = x[e];
}

template <typename T>
PE_HD void upsample_fwd_elem(int64_t H, int64_t W, int64_t fH, int64_t fW, const T* x, T* y,
                             int64_t e) {
  const int64_t OH = H * fH, OW = W * fW;
  const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
  y[e] = x[p * H * W + (oh / fH) * W + ow / fW];
}

template <typename T>
PE_HD void upsample_bwd_elem(int64_t H, int64_t W, int64_t fH, int64_t fW, const T* gy, T* gx,
                             int64_t e) {
  const int64_t OW = W * fW;
  const int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
  const T* gp = gy + p * H * fH * OW;
  T s = 0;
  for (int64_t a = 0; a < fH; ++a)
    for (int64_t b = 0; b < fW; ++b) s += gp[(ih * fH + a) * OW + iw * fW + b];
  gx[e] = s;
}

// ---- kernels: a grid-stride loop over one element function ---------------------------------
template <typename T>
__global__ void max_pool_fwd_kernel(Pool2d g, const T* x, T* y, int64_t* idx) {
  PE_GRID_LOOP(e, g.planes * g.OH * g.OW) max_pool_elem(g, x, y, idx, e);
}
template <typename T>
__global__ void adaptive_max_fwd_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* x, T* y, int64_t* idx) {
  PE_GRID_LOOP(e, n) adaptive_max_elem(H, W, OH, OW, x, y, idx, e);
}
template <typename T>
__global__ void scatter_add_kernel(int64_t n, int64_t in_hw, int64_t out_hw, const T* gy,
                                   const int64_t* idx, T* gx) {
  PE_GRID_LOOP(e, n) scatter_add_elem(in_hw, out_hw, gy, idx, gx, e);
}
template <typename T>
__global__ void gather_kernel(int64_t n, int64_t src_hw, int64_t out_hw, const T* src,
                              const int64_t* idx, T* out) {
  PE_GRID_LOOP(e, n) gather_elem(src_hw, out_hw, src, idx, out, e);
}
template <typename T>
__global__ void avg_fwd_kernel(Pool2d g, bool cip, int64_t div, const T* x, T* y) {
  PE_GRID_LOOP(e, g.planes * g.OH * g.OW) avg_fwd_elem(g, cip, div, x, y, e);
}
template <typename T>
__global__ void avg_bwd_kernel(Pool2d g, bool cip, int64_t div, const T* gy, T* gx) {
  PE_GRID_LOOP(e, g.planes * g.H * g.W) avg_bwd_elem(g, cip, div, gy, gx, e);
}
template <typename T>
__global__ void adaptive_avg_fwd_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* x, T* y) {
  PE_GRID_LOOP(e, n) adaptive_avg_fwd_elem(H, W, OH, OW, x, y, e);
}
template <typename T>
__global__ void adaptive_avg_bwd_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* gy, T* gx) {
  PE_GRID_LOOP(e, n) adaptive_avg_bwd_elem(H, W, OH, OW, gy, gx, e);
}
template <typename T>
__global__ void unpool_kernel(int64_t n, int64_t in_hw, int64_t out_hw, const T* x,
                              const int64_t* idx, T* y) {
  PE_GRID_LOOP(e, n) unpool_elem(in_hw, out_hw, x, idx, y, e);
}
template <typename T>
__global__ void upsample_fwd_kernel(int64_t n, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                    const T* x, T* y) {
  PE_GRID_LOOP(e, n) upsample_fwd_elem(H, W, fH, fW, x, y, e);
}
template <typename T>
__global__ void upsample_bwd_kernel(int64_t n, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                    const T* gy, T* gx) {
  PE_GRID_LOOP(e, n) upsample_bwd_elem(H, W, fH, fW, gy, gx, e);
}

}  // namespace pool_detail

using namespace pool_detail;

// ---------------------------------------------------------------- launchers

template <typename T>
void max_pool2d_forward(const Pool2d& g, const T* x, T* y, int64_t* idx, cudaStream_t stream) {
  const int64_t n = g.planes * g.OH * g.OW;
  if (n == 0) return;
  max_pool_fwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(g, x, y, idx);
  PE_CUDA_CHECK_LAUNCH("max_pool2d");
}

template <typename T>
void max_pool2d_backward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* gy,
                         const int64_t* idx, T* gx, cudaStream_t stream) {
  if (planes * in_hw == 0) return;
  PE_CUDA_CHECK(cudaMemsetAsync(gx, 0, static_cast<size_t>(planes * in_hw) * sizeof(T), stream),
                "max_pool2d_backward");
  if (planes * out_hw == 0) return;
  scatter_add_kernel<T><<<blocks_for(planes * out_hw), kThreads, 0, stream>>>(
      planes * out_hw, in_hw, out_hw, gy, idx, gx);
  PE_CUDA_CHECK_LAUNCH("max_pool2d_backward");
}

template <typename T>
void pool_gather(int64_t planes, int64_t src_hw, int64_t out_hw, const T* src, const int64_t* idx,
                 T* out, cudaStream_t stream) {
  if (planes * out_hw == 0) return;
  gather_kernel<T><<<blocks_for(planes * out_hw), kThreads, 0, stream>>>(planes * out_hw, src_hw,
                                                                         out_hw, src, idx, out);
  PE_CUDA_CHECK_LAUNCH("pool_gather");
}

template <typename T>
void avg_pool2d_forward(const Pool2d& g, bool cip, int64_t div_override, const T* x, T* y,
                        cudaStream_t stream) {
  const int64_t n = g.planes * g.OH * g.OW;
  if (n == 0) return;
  avg_fwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(g, cip, div_override, x, y);
  PE_CUDA_CHECK_LAUNCH("avg_pool2d");
}

template <typename T>
void avg_pool2d_backward(const Pool2d& g, bool cip, int64_t div_override, const T* gy, T* gx,
                         cudaStream_t stream) {
  const int64_t n = g.planes * g.H * g.W;
  if (n == 0) return;
  avg_bwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(g, cip, div_override, gy, gx);
  PE_CUDA_CHECK_LAUNCH("avg_pool2d_backward");
}

template <typename T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, cudaStream_t stream) {
  const int64_t n = planes * OH * OW;
  if (n == 0) return;
  adaptive_avg_fwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, H, W, OH, OW, x, y);
  PE_CUDA_CHECK_LAUNCH("adaptive_avg_pool2d");
}

template <typename T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const T* gy, T* gx, cudaStream_t stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  adaptive_avg_bwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, H, W, OH, OW, gy, gx);
  PE_CUDA_CHECK_LAUNCH("adaptive_avg_pool2d_backward");
}

template <typename T>
void adaptive_max_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, int64_t* idx, cudaStream_t stream) {
  const int64_t n = planes * OH * OW;
  if (n == 0) return;
  adaptive_max_fwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, H, W, OH, OW, x, y, idx);
  PE_CUDA_CHECK_LAUNCH("adaptive_max_pool2d");
}

template <typename T>
void max_unpool2d_forward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* x,
                          const int64_t* idx, T* y, cudaStream_t stream) {
  if (planes * out_hw == 0) return;
  PE_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(planes * out_hw) * sizeof(T), stream),
                "max_unpool2d");
  if (planes * in_hw == 0) return;
  unpool_kernel<T><<<blocks_for(planes * in_hw), kThreads, 0, stream>>>(planes * in_hw, in_hw,
                                                                        out_hw, x, idx, y);
  PE_CUDA_CHECK_LAUNCH("max_unpool2d");
}

template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                const T* x, T* y, cudaStream_t stream) {
  const int64_t n = planes * H * fH * W * fW;
  if (n == 0) return;
  upsample_fwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, H, W, fH, fW, x, y);
  PE_CUDA_CHECK_LAUNCH("upsample_nearest2d");
}

template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                 const T* gy, T* gx, cudaStream_t stream) {
  const int64_t n = planes * H * W;
  if (n == 0) return;
  upsample_bwd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(n, H, W, fH, fW, gy, gx);
  PE_CUDA_CHECK_LAUNCH("upsample_nearest2d_backward");
}

#define PE_POOL_CUDA_INSTANTIATE(T)                                                               \
  template void max_pool2d_forward<T>(const Pool2d&, const T*, T*, int64_t*, cudaStream_t);       \
  template void max_pool2d_backward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*,   \
                                       cudaStream_t);                                             \
  template void pool_gather<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*,           \
                               cudaStream_t);                                                     \
  template void avg_pool2d_forward<T>(const Pool2d&, bool, int64_t, const T*, T*, cudaStream_t);  \
  template void avg_pool2d_backward<T>(const Pool2d&, bool, int64_t, const T*, T*, cudaStream_t); \
  template void adaptive_avg_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*, cudaStream_t);                       \
  template void adaptive_avg_pool2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                                const T*, T*, cudaStream_t);                      \
  template void adaptive_max_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*, int64_t*, cudaStream_t);             \
  template void max_unpool2d_forward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*,  \
                                        cudaStream_t);                                            \
  template void upsample_nearest2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,        \
                                              const T*, T*, cudaStream_t);                        \
  template void upsample_nearest2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*, cudaStream_t);

PE_POOL_CUDA_INSTANTIATE(float)
PE_POOL_CUDA_INSTANTIATE(double)
#undef PE_POOL_CUDA_INSTANTIATE

}  // namespace pyengine::cuda
