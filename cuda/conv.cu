// The generalized 2-D convolution on CUDA: implicit GEMM (contract in cuda/conv.h).
//
// Forward, per group g: Y_g (Og x N*OH*OW) = W_g (Og x Cg*KH*KW) * cols_g, where column
// j = (n, oh, ow) and row k = (c, kh, kw) of cols_g is the input element that tap k of
// output j reads (0 for padding and for the zeros of input dilation). A block computes a
// 64 x 64 tile of Y_g; each K step gathers a 16-deep slice of W_g and of cols_g into shared
// memory, then every thread accumulates a 4 x 4 sub-tile whose rows / columns are 16 apart
// (so shared-memory reads are conflict-free and global stores are coalesced along j).
// grad-weight: GW_g (Og x Cg*KH*KW) = GY_g (Og x N*OH*OW) * cols_g^T with the same tiles,
// the long reduction over j split across blocks and summed with atomicAdd.
// Input-dilated stride-1 convs run per output phase over only their live taps (see
// PhaseGeo). grad-input: the forward of conv_adjoint(p). grad-bias: one block per channel.
// float convs without input dilation and with at least 64 taps take faster forward and
// grad-weight kernels instead (namespace fast below: 128-column tiles, 8 x 8 per thread,
// register prefetch, index tables instead of divisions).
//
// The tile loads and the multiply-accumulate are __host__ __device__ functions of the
// thread index, so a host program can run a block's threads phase by phase and check the
// indexing without a GPU (the project's CI has none).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "conv.h"

#define PE_HD __host__ __device__ __forceinline__

namespace pyengine::cuda {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t kdil, int64_t idil) {
  const int64_t span = (in - 1) * idil + 1 + pad_lo + pad_hi;
  const int64_t kext = (k - 1) * kdil + 1;
  if (in <= 0 || span < kext) return -1;
  return (span - kext) / stride + 1;
}

int64_t ConvParams::OH() const {
  return conv_out_size(H, KH, stride[0], pad_lo[0], pad_hi[0], kdil[0], idil[0]);
}
int64_t ConvParams::OW() const {
  return conv_out_size(W, KW, stride[1], pad_lo[1], pad_hi[1], kdil[1], idil[1]);
}

ConvParams conv_adjoint(const ConvParams& p) {
  ConvParams a = p;
  a.C = p.O;
  a.O = p.C;
  a.H = p.OH();
  a.W = p.OW();
  a.flip = !p.flip;
  a.wtrans = !p.wtrans;
  const int64_t in[2] = {p.H, p.W}, out[2] = {a.H, a.W}, k[2] = {p.KH, p.KW};
  for (int d = 0; d < 2; ++d) {
    const int64_t kext = (k[d] - 1) * p.kdil[d];
    a.stride[d] = p.idil[d];
    a.idil[d] = p.stride[d];
    a.pad_lo[d] = kext - p.pad_lo[d];
    a.pad_hi[d] = (in[d] - 1) * a.stride[d] + kext - (out[d] - 1) * a.idil[d] - a.pad_lo[d];
  }
  return a;
}

namespace conv_detail {

constexpr int kThreads = 256;    // 16 x 16 threads
constexpr int kBM = 64;          // tile rows (output channels)
constexpr int kBN = 64;          // tile columns (output pixels, or weight taps for grad-weight)
constexpr int kBK = 16;          // reduction slice
constexpr int kTM = 4, kTN = 4;  // per-thread sub-tile; rows ty + 16*i, columns tx + 16*j

// The problem as 32-bit fields (checked by the bindings) plus derived sizes.
struct Geo {
  int N, C, H, W, O, KH, KW, G, Cg, Og, OH, OW, K;  // K = Cg*KH*KW
  int sh, sw, plh, plw, dkh, dkw, dih, diw;
  int flip, wtrans;
  long long NJ;  // N*OH*OW
};

inline Geo make_geo(const ConvParams& p) {
  Geo q;
  q.N = static_cast<int>(p.N);
  q.C = static_cast<int>(p.C);
  q.H = static_cast<int>(p.H);
  q.W = static_cast<int>(p.W);
  q.O = static_cast<int>(p.O);
  q.KH = static_cast<int>(p.KH);
  q.KW = static_cast<int>(p.KW);
  q.G = static_cast<int>(p.groups);
  q.Cg = q.C / q.G;
  q.Og = q.O / q.G;
  q.OH = static_cast<int>(p.OH());
  q.OW = static_cast<int>(p.OW());
  q.K = q.Cg * q.KH * q.KW;
  q.sh = static_cast<int>(p.stride[0]);
  q.sw = static_cast<int>(p.stride[1]);
  q.plh = static_cast<int>(p.pad_lo[0]);
  q.plw = static_cast<int>(p.pad_lo[1]);
  q.dkh = static_cast<int>(p.kdil[0]);
  q.dkw = static_cast<int>(p.kdil[1]);
  q.dih = static_cast<int>(p.idil[0]);
  q.diw = static_cast<int>(p.idil[1]);
  q.flip = p.flip ? 1 : 0;
  q.wtrans = p.wtrans ? 1 : 0;
  q.NJ = static_cast<long long>(q.N) * q.OH * q.OW;
  return q;
}

// Index of Wc(g, o, c, kh, kw) in the stored weight (k = (c*KH + kh)*KW + kw).
PE_HD long long widx(const Geo& p, int g, int o, int k) {
  const int kk = p.KH * p.KW;
  const int c = k / kk;
  int t = k - c * kk;
  if (p.flip) t = kk - 1 - t;  // (KH-1-kh)*KW + (KW-1-kw) == KH*KW-1 - (kh*KW + kw)
  return p.wtrans ? (static_cast<long long>(g * p.Cg + c) * p.Og + o) * kk + t
                  : (static_cast<long long>(g * p.Og + o) * p.Cg + c) * kk + t;
}

// The element (k, j) of group g's column matrix: x at the tap, or 0.
template <typename T>
PE_HD T col_at(const T* x, const Geo& p, int g, int k, long long j) {
  const int kk = p.KH * p.KW;
  const int c = k / kk;
  const int t = k - c * kk;
  const int kh = t / p.KW, kw = t - (t / p.KW) * p.KW;
  const int ohw = p.OH * p.OW;
  const long long n = j / ohw;
  const int r = static_cast<int>(j - n * ohw);
  const int oh = r / p.OW, ow = r - (r / p.OW) * p.OW;
  const int qh = oh * p.sh - p.plh + kh * p.dkh;
  const int qw = ow * p.sw - p.plw + kw * p.dkw;
  if (qh < 0 || qw < 0 || qh % p.dih != 0 || qw % p.diw != 0) return T(0);
  const int ih = qh / p.dih, iw = qw / p.diw;
  if (ih >= p.H || iw >= p.W) return T(0);
  return x[((n * p.C + g * p.Cg + c) * p.H + ih) * p.W + iw];
}

// Index of (n, g*Og + o, oh, ow) for column j in an (N, O, OH, OW) array.
PE_HD long long out_index(const Geo& p, int g, int o, long long j) {
  const long long ohw = static_cast<long long>(p.OH) * p.OW;
  const long long n = j / ohw;
  return (n * p.O + g * p.Og + o) * ohw + (j - n * ohw);
}

// One padding element per row: the loads write down columns (neighbouring threads take
// neighbouring k), which would otherwise hit one shared-memory bank 16 times.
template <typename T>
struct Tiles {
  T a[kBK][kBM + 1];  // a[k][row]
  T b[kBK][kBN + 1];  // b[k][col]
};

// Forward, one K slice: a = W_g[o0.., k0..], b = cols_g[k0.., j0..]; zeros outside.
template <typename T>
PE_HD void fwd_load(const Geo& p, const T* x, const T* w, int g, int o0, long long j0, int k0,
                    int tid, Tiles<T>& s) {
  for (int i = tid; i < kBM * kBK; i += kThreads) {
    const int kk = i % kBK, r = i / kBK;  // neighbouring threads: neighbouring taps
    const int o = o0 + r, k = k0 + kk;
    s.a[kk][r] = (o < p.Og && k < p.K) ? w[widx(p, g, o, k)] : T(0);
  }
  for (int i = tid; i < kBK * kBN; i += kThreads) {
    const int jj = i % kBN, kk = i / kBN;  // neighbouring threads: neighbouring pixels
    const long long j = j0 + jj;
    const int k = k0 + kk;
    s.b[kk][jj] = (j < p.NJ && k < p.K) ? col_at(x, p, g, k, j) : T(0);
  }
}

// grad-weight, one reduction slice [j0, j0+16) (clipped to j_end): a = GY_g[o0.., j],
// b = cols_g[k0.., j] (as b[j][k]).
template <typename T>
PE_HD void gw_load(const Geo& p, const T* x, const T* gy, int g, int o0, int k0, long long j0,
                   long long j_end, int tid, Tiles<T>& s) {
  for (int i = tid; i < kBM * kBK; i += kThreads) {
    const int jj = i % kBK, r = i / kBK;
    const int o = o0 + r;
    const long long j = j0 + jj;
    s.a[jj][r] = (o < p.Og && j < j_end) ? gy[out_index(p, g, o, j)] : T(0);
  }
  for (int i = tid; i < kBK * kBN; i += kThreads) {
    const int jj = i % kBK, c = i / kBK;
    const int k = k0 + c;
    const long long j = j0 + jj;
    s.b[jj][c] = (k < p.K && j < j_end) ? col_at(x, p, g, k, j) : T(0);
  }
}

template <typename T>
PE_HD void tile_fma(const Tiles<T>& s, int tid, T (&acc)[kTM][kTN]) {
  const int tx = tid % 16, ty = tid / 16;
#pragma unroll
  for (int kk = 0; kk < kBK; ++kk) {
    T a[kTM], b[kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i) a[i] = s.a[kk][ty + 16 * i];
#pragma unroll
    for (int j = 0; j < kTN; ++j) b[j] = s.b[kk][tx + 16 * j];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] += a[i] * b[j];
  }
}

template <typename T>
PE_HD void fwd_store(const Geo& p, const T* bias, T* y, int g, int o0, long long j0, int tid,
                     const T (&acc)[kTM][kTN]) {
  const int tx = tid % 16, ty = tid / 16;
  for (int i = 0; i < kTM; ++i) {
    const int o = o0 + ty + 16 * i;
    if (o >= p.Og) continue;
    const T b = bias != nullptr ? bias[g * p.Og + o] : T(0);
    for (int j = 0; j < kTN; ++j) {
      const long long col = j0 + tx + 16 * j;
      if (col < p.NJ) y[out_index(p, g, o, col)] = acc[i][j] + b;
    }
  }
}

template <typename T>
PE_HD void add_to(T* dst, T v) {
#ifdef __CUDA_ARCH__
  atomicAdd(dst, v);
#else
  *dst += v;  // the host emulation runs one thread at a time
#endif
}

template <typename T>
PE_HD void gw_store(const Geo& p, T* gw, int g, int o0, int k0, int tid, const T (&acc)[kTM][kTN]) {
  const int tx = tid % 16, ty = tid / 16;
  for (int i = 0; i < kTM; ++i) {
    const int o = o0 + ty + 16 * i;
    if (o >= p.Og) continue;
    for (int j = 0; j < kTN; ++j) {
      const int k = k0 + tx + 16 * j;
      if (k < p.K) add_to(&gw[widx(p, g, o, k)], acc[i][j]);
    }
  }
}

// The reduction range of split `s` of `splits` over [0, NJ), in whole 16-slices.
PE_HD void split_range(long long nj, int splits, int s, long long& lo, long long& hi) {
  const long long slices = (nj + kBK - 1) / kBK;
  lo = slices * s / splits * kBK;
  hi = slices * (s + 1) / splits * kBK;
  if (hi > nj) hi = nj;
}

// ---- output phases (input dilation, stride 1) -----------------------------------------
// A conv with input dilation d > 1 and stride 1 (transposed convs, grad-input of strided
// convs) reads an inserted zero at most taps. Its outputs split into d_h x d_w phases
// (oh mod d_h, ow mod d_w); within one phase only the taps whose offset lands on a real
// input element contribute, at input row u + base[tap] for output row oh = r + d*u. Each
// phase is then a dense stride-1 implicit GEMM over its own taps: no zero is multiplied.
constexpr int kMaxPhaseTaps = 32;  // per dim; taller kernels use the generic path

struct PhaseGeo {
  int rh, rw;                                // the phase: outputs oh = rh + dih*u, ow = rw + diw*v
  int U, V;                                  // outputs of this phase per dim
  int nth, ntw;                              // taps of this phase per dim
  int K;                                     // Cg * nth * ntw
  long long NJ;                              // N * U * V
  int kh[kMaxPhaseTaps], bh[kMaxPhaseTaps];  // tap, and input row offset: ih = u + bh
  int kw[kMaxPhaseTaps], bw[kMaxPhaseTaps];
};

inline int floor_div_int(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Phase (rh, rw) of p (stride 1, idil > 1); false when it has no outputs. A phase with
// outputs but no taps has K = 0: its outputs are the bias.
inline bool make_phase(const Geo& p, int rh, int rw, PhaseGeo& f) {
  f = PhaseGeo{};
  f.rh = rh;
  f.rw = rw;
  f.U = rh < p.OH ? (p.OH - rh + p.dih - 1) / p.dih : 0;
  f.V = rw < p.OW ? (p.OW - rw + p.diw - 1) / p.diw : 0;
  if (f.U == 0 || f.V == 0) return false;
  for (int k = 0; k < p.KH; ++k) {
    const int q = rh + k * p.dkh - p.plh;  // dilated input coordinate at u = 0
    if (((q % p.dih) + p.dih) % p.dih == 0) {
      f.kh[f.nth] = k;
      f.bh[f.nth++] = floor_div_int(q, p.dih);
    }
  }
  for (int k = 0; k < p.KW; ++k) {
    const int q = rw + k * p.dkw - p.plw;
    if (((q % p.diw) + p.diw) % p.diw == 0) {
      f.kw[f.ntw] = k;
      f.bw[f.ntw++] = floor_div_int(q, p.diw);
    }
  }
  f.K = p.Cg * f.nth * f.ntw;
  f.NJ = static_cast<long long>(p.N) * f.U * f.V;
  return true;
}

// Phase forward, one K slice: a = W_g over the phase's taps, b = its dense columns.
template <typename T>
PE_HD void phase_load(const Geo& p, const PhaseGeo& f, const T* x, const T* w, int g, int o0,
                      long long j0, int k0, int tid, Tiles<T>& s) {
  const int taps = f.nth * f.ntw;
  for (int i = tid; i < kBM * kBK; i += kThreads) {
    const int kk = i % kBK, r = i / kBK;
    const int o = o0 + r, k = k0 + kk;
    T v = T(0);
    if (o < p.Og && k < f.K) {
      const int c = k / taps, t = k - c * taps;
      const int th = t / f.ntw, tw = t - th * f.ntw;
      v = w[widx(p, g, o, (c * p.KH + f.kh[th]) * p.KW + f.kw[tw])];
    }
    s.a[kk][r] = v;
  }
  const int uv = f.U * f.V;
  for (int i = tid; i < kBK * kBN; i += kThreads) {
    const int jj = i % kBN, kk = i / kBN;
    const long long j = j0 + jj;
    const int k = k0 + kk;
    T v = T(0);
    if (j < f.NJ && k < f.K) {
      const int c = k / taps, t = k - c * taps;
      const int th = t / f.ntw, tw = t - th * f.ntw;
      const long long n = j / uv;
      const int r = static_cast<int>(j - n * uv);
      const int u = r / f.V, vv = r - (r / f.V) * f.V;
      const int ih = u + f.bh[th], iw = vv + f.bw[tw];
      if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
        v = x[((n * p.C + g * p.Cg + c) * p.H + ih) * p.W + iw];
    }
    s.b[kk][jj] = v;
  }
}

template <typename T>
PE_HD void phase_store(const Geo& p, const PhaseGeo& f, const T* bias, T* y, int g, int o0,
                       long long j0, int tid, const T (&acc)[kTM][kTN]) {
  const int tx = tid % 16, ty = tid / 16;
  const int uv = f.U * f.V;
  for (int i = 0; i < kTM; ++i) {
    const int o = o0 + ty + 16 * i;
    if (o >= p.Og) continue;
    const T b = bias != nullptr ? bias[g * p.Og + o] : T(0);
    for (int j = 0; j < kTN; ++j) {
      const long long col = j0 + tx + 16 * j;
      if (col >= f.NJ) continue;
      const long long n = col / uv;
      const int r = static_cast<int>(col - n * uv);
      const int oh = f.rh + p.dih * (r / f.V), ow = f.rw + p.diw * (r % f.V);
      y[((n * p.O + g * p.Og + o) * p.OH + oh) * static_cast<long long>(p.OW) + ow] = acc[i][j] + b;
    }
  }
}

// ---- fast float forward (no input dilation) -------------------------------------------
// The GEMM kernel's scheme (cuda/gemm.cu) with a gathering B loader: a block computes a
// BM x 128 tile of Y_g (BM = 64 or 128 output channels), each thread a (BM/16) x 8 sub-tile
// whose rows and columns are two groups of 4 (float4 reads of shared memory). K is walked in
// slices of 8: the next slice goes global -> registers while the current one is multiplied,
// then registers -> the other shared buffer, one barrier per slice. The decoding of a column
// j = (n, oh, ow) is done once per block (shared memory); a tap k = (c, kh, kw) is read from
// a small table (one int4 per k, built by conv_taps_kernel), so the gather has no division.
namespace fast {

constexpr int BN = 128, BK = 8, PAD = 4;

// wp[(g*K + k)*Og + o] = W_g(o, k) with flip / wtrans resolved: the A loader reads rows of
// Og contiguous values with no index arithmetic. OVERWRITES wp (G*K*Og values).
__global__ void conv_pack_weight_kernel(Geo p, const float* __restrict__ w,
                                        float* __restrict__ wp) {
  const long long ko = static_cast<long long>(p.K) * p.Og;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < ko * p.G;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int g = static_cast<int>(e / ko), k = static_cast<int>((e % ko) / p.Og);
    const int o = static_cast<int>(e % p.Og);
    wp[e] = w[widx(p, g, o, k)];
  }
}

// acc[i][j] += A[kk][row i] * B[kk][column j] over one slice: a thread's TM rows are
// 4ty + {0..3} (+64 when TM = 8), its 8 columns 4tx + {0..3} and 64 + 4tx + {0..3}.
template <int TM, int LA, int LB>
__device__ __forceinline__ void tile_outer(const float (&A)[BK][LA], const float (&B)[BK][LB],
                                           int tx, int ty, float (&acc)[TM][8]) {
#pragma unroll
  for (int kk = 0; kk < BK; ++kk) {
    float a[TM], b[8];
#pragma unroll
    for (int h = 0; h < TM / 4; ++h) {
      const float4 v = *reinterpret_cast<const float4*>(&A[kk][64 * h + 4 * ty]);
      a[4 * h] = v.x, a[4 * h + 1] = v.y, a[4 * h + 2] = v.z, a[4 * h + 3] = v.w;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float4 v = *reinterpret_cast<const float4*>(&B[kk][64 * h + 4 * tx]);
      b[4 * h] = v.x, b[4 * h + 1] = v.y, b[4 * h + 2] = v.z, b[4 * h + 3] = v.w;
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
  }
}

// The slice pipeline of both fast kernels over the reduction range [lo, hi) in slices of BK
// (lo < hi): slice 0 goes to shared buffer 0; then, per slice, load(next) global -> registers,
// multiply(buf) on the current buffer, store(buf ^ 1) registers -> the other one, and one
// barrier (the barrier ending slice i orders its reads of a buffer before slice i + 1's store
// into it).
template <typename I, typename Load, typename Store, typename Multiply>
__device__ __forceinline__ void run_slices(I lo, I hi, Load& load, Store& store,
                                           Multiply&& multiply) {
  load(lo);
  store(0);
  __syncthreads();
  int buf = 0;
  for (I k0 = lo; k0 < hi; k0 += BK) {
    const bool more = k0 + BK < hi;
    if (more) load(k0 + BK);
    multiply(buf);
    if (more) store(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }
}

// taps[k] = {c*H*W, kh*dkh, kw*dkw, 0} for k = (c*KH + kh)*KW + kw of one group.
__global__ void conv_taps_kernel(Geo p, int4* taps) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= p.K) return;
  const int kk = p.KH * p.KW, c = k / kk, t = k - c * kk, kh = t / p.KW, kw = t - kh * p.KW;
  taps[k] = make_int4(c * p.H * p.W, kh * p.dkh, kw * p.dkw, 0);
}

// Forward, grid (ceil(NJ/128), ceil(Og/BM), G), 256 threads: y[n, g*Og + o, oh, ow] =
// bias + sum over k of wp[(g*K + k)*Og + o] * x at tap k (OVERWRITTEN, every output of the
// tile written once); wp from conv_pack_weight_kernel, taps from conv_taps_kernel.
template <int BM>
__global__ void __launch_bounds__(kThreads, 2)
    conv_fwd_fast_kernel(Geo p, const float* __restrict__ x, const float* __restrict__ wp,
                         const float* __restrict__ bias, float* __restrict__ y,
                         const int4* __restrict__ taps) {
  constexpr int TM = BM / 16, AL = BM * BK / kThreads;  // rows per thread, A loads per thread
  __shared__ __align__(16) float As[2][BK][BM + PAD];
  __shared__ __align__(16) float Bs[2][BK][BN + PAD];
  __shared__ int col_img[BN], col_out[BN];  // x offset of (n, g*Cg); y offset; -1 past NJ
  __shared__ int col_ih[BN], col_iw[BN];    // top-left input tap of the column
  const int tid = threadIdx.x, g = blockIdx.z, o0 = blockIdx.y * BM;
  const long long j0 = static_cast<long long>(blockIdx.x) * BN;
  const int ohw = p.OH * p.OW;  // x and y have fewer than 2^31 elements (conv_forward_fast)
  if (tid < BN) {
    const long long j = j0 + tid;
    int img = -1, out = -1;
    int ih = 0, iw = 0;
    if (j < p.NJ) {
      const int n = static_cast<int>(j / ohw);
      const int r = static_cast<int>(j - static_cast<long long>(n) * ohw), oh = r / p.OW,
                ow = r - oh * p.OW;
      img = (n * p.C + g * p.Cg) * p.H * p.W;
      out = (n * p.O + g * p.Og) * ohw + r;
      ih = oh * p.sh - p.plh;
      iw = ow * p.sw - p.plw;
    }
    col_img[tid] = img;
    col_out[tid] = out;
    col_ih[tid] = ih;
    col_iw[tid] = iw;
  }
  __syncthreads();

  // B loader: column bj, k rows bk + 2i; A loader: element tid + 256i of the BK x BM slice.
  const int bj = tid % BN, bk = tid / BN;
  const int img = col_img[bj];
  const int ih0 = col_ih[bj], iw0 = col_iw[bj];
  float ra[AL], rb[4];
  auto load = [&](int k0) {
#pragma unroll
    for (int i = 0; i < AL; ++i) {
      const int e = tid + kThreads * i, o = o0 + e % BM, k = k0 + e / BM;
      ra[i] = (o < p.Og && k < p.K) ? wp[(g * p.K + k) * p.Og + o] : 0.f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int k = k0 + bk + 2 * i;
      float v = 0.f;
      if (img >= 0 && k < p.K) {
        const int4 t = taps[k];
        const int ih = ih0 + t.y, iw = iw0 + t.z;
        if (static_cast<unsigned>(ih) < static_cast<unsigned>(p.H) &&
            static_cast<unsigned>(iw) < static_cast<unsigned>(p.W))
          v = x[img + t.x + ih * p.W + iw];
      }
      rb[i] = v;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < AL; ++i) {
      const int e = tid + kThreads * i;
      As[buf][e / BM][e % BM] = ra[i];
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) Bs[buf][bk + 2 * i][bj] = rb[i];
  };

  const int tx = tid % 16, ty = tid / 16;
  float acc[TM][8] = {};
  run_slices(0, p.K, load, store, [&](int buf) { tile_outer<TM>(As[buf], Bs[buf], tx, ty, acc); });

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int o = o0 + 64 * (i / 4) + 4 * ty + i % 4;
    if (o >= p.Og) continue;
    const float b = bias != nullptr ? bias[g * p.Og + o] : 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int out = col_out[64 * (j / 4) + 4 * tx + j % 4];
      if (out >= 0) y[out + o * ohw] = acc[i][j] + b;
    }
  }
}

// cols[j] = {x offset of image n, oh*sh - plh, ow*sw - plw, y offset of (n, 0, oh, ow)} for
// j = (n, oh, ow) < NJ: the grad-weight loaders read it instead of dividing (OVERWRITES cols).
__global__ void conv_cols_kernel(Geo p, int4* __restrict__ cols) {
  const int ohw = p.OH * p.OW;
  for (long long j = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; j < p.NJ;
       j += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(j / ohw),
              r = static_cast<int>(j - static_cast<long long>(n) * ohw);
    const int oh = r / p.OW, ow = r - oh * p.OW;
    cols[j] =
        make_int4(n * p.C * p.H * p.W, oh * p.sh - p.plh, ow * p.sw - p.plw, n * p.O * ohw + r);
  }
}

// grad-weight, grid (ceil(K/128), ceil(Og/BM), G*splits), 256 threads:
// GW_g (Og x K) += GY_g (Og x [lo, hi)) * cols_g ([lo, hi) x K) for split
// blockIdx.z % splits of the reduction over j, ACCUMULATED into gw with atomicAdd (gw zeroed
// before; the summation order varies from run to run). The forward's scheme with j as the
// reduction: a block takes BM output channels x 128 taps; each thread's B column is one tap for the
// whole loop, its rows the slice's j.
template <int BM>
__global__ void __launch_bounds__(kThreads, 2)
    conv_gw_fast_kernel(Geo p, int splits, const float* __restrict__ x,
                        const float* __restrict__ gy, float* __restrict__ gw,
                        const int4* __restrict__ taps, const int4* __restrict__ cols) {
  constexpr int TM = BM / 16, AL = BM * BK / kThreads;
  __shared__ __align__(16) float As[2][BK][BM + PAD];  // As[j][o]
  __shared__ __align__(16) float Bs[2][BK][BN + PAD];  // Bs[j][k]
  const int tid = threadIdx.x, g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int o0 = blockIdx.y * BM, kb0 = blockIdx.x * BN;
  const long long slices = (p.NJ + BK - 1) / BK;
  const long long lo = slices * split / splits * BK;
  const long long end = slices * (split + 1) / splits * BK, hi = end < p.NJ ? end : p.NJ;
  const int ohw = p.OH * p.OW, gx = g * p.Cg * p.H * p.W, gyo = g * p.Og * ohw;
  const int bk = tid % BN, bj = tid / BN;
  const bool kval = kb0 + bk < p.K;
  const int4 tap = kval ? taps[kb0 + bk] : make_int4(0, 0, 0, 0);
  float ra[AL], rb[4];
  auto load = [&](long long j0) {
#pragma unroll
    for (int i = 0; i < AL; ++i) {
      const int e = tid + kThreads * i, o = o0 + e / BK;
      const long long j = j0 + e % BK;
      ra[i] = (o < p.Og && j < hi) ? gy[cols[j].w + gyo + o * ohw] : 0.f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const long long j = j0 + bj + 2 * i;
      float v = 0.f;
      if (kval && j < hi) {
        const int4 c = cols[j];
        const int ih = c.y + tap.y, iw = c.z + tap.z;
        if (static_cast<unsigned>(ih) < static_cast<unsigned>(p.H) &&
            static_cast<unsigned>(iw) < static_cast<unsigned>(p.W))
          v = x[c.x + gx + tap.x + ih * p.W + iw];
      }
      rb[i] = v;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < AL; ++i) {
      const int e = tid + kThreads * i;
      As[buf][e % BK][e / BK] = ra[i];
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) Bs[buf][bj + 2 * i][bk] = rb[i];
  };

  const int tx = tid % 16, ty = tid / 16;
  float acc[TM][8] = {};
  if (lo >= hi) return;
  run_slices(lo, hi, load, store, [&](int buf) { tile_outer<TM>(As[buf], Bs[buf], tx, ty, acc); });
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int o = o0 + 64 * (i / 4) + 4 * ty + i % 4;
    if (o >= p.Og) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int k = kb0 + 64 * (j / 4) + 4 * tx + j % 4;
      if (k < p.K) atomicAdd(&gw[widx(p, g, o, k)], acc[i][j]);
    }
  }
}

}  // namespace fast

// ---- kernels -------------------------------------------------------------------
// grid (ceil(NJ/64), ceil(Og/64), G), 256 threads.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    conv_fwd_kernel(Geo p, const T* __restrict__ x, const T* __restrict__ w,
                    const T* __restrict__ bias, T* __restrict__ y) {
  __shared__ Tiles<T> s;
  const int g = blockIdx.z, o0 = blockIdx.y * kBM;
  const long long j0 = static_cast<long long>(blockIdx.x) * kBN;
  T acc[kTM][kTN] = {};
  for (int k0 = 0; k0 < p.K; k0 += kBK) {
    fwd_load(p, x, w, g, o0, j0, k0, threadIdx.x, s);
    __syncthreads();
    tile_fma(s, threadIdx.x, acc);
    __syncthreads();
  }
  fwd_store(p, bias, y, g, o0, j0, threadIdx.x, acc);
}

// One output phase: grid (ceil(NJ_phase/64), ceil(Og/64), G), 256 threads.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    conv_phase_kernel(Geo p, PhaseGeo f, const T* __restrict__ x, const T* __restrict__ w,
                      const T* __restrict__ bias, T* __restrict__ y) {
  __shared__ Tiles<T> s;
  const int g = blockIdx.z, o0 = blockIdx.y * kBM;
  const long long j0 = static_cast<long long>(blockIdx.x) * kBN;
  T acc[kTM][kTN] = {};
  for (int k0 = 0; k0 < f.K; k0 += kBK) {
    phase_load(p, f, x, w, g, o0, j0, k0, threadIdx.x, s);
    __syncthreads();
    tile_fma(s, threadIdx.x, acc);
    __syncthreads();
  }
  phase_store(p, f, bias, y, g, o0, j0, threadIdx.x, acc);
}

// grid (ceil(K/64), ceil(Og/64), G*splits), 256 threads; gw zeroed before.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    conv_gw_kernel(Geo p, int splits, const T* __restrict__ x, const T* __restrict__ gy,
                   T* __restrict__ gw) {
  __shared__ Tiles<T> s;
  const int g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int o0 = blockIdx.y * kBM, k0 = blockIdx.x * kBN;
  long long lo, hi;
  split_range(p.NJ, splits, split, lo, hi);
  T acc[kTM][kTN] = {};
  for (long long j0 = lo; j0 < hi; j0 += kBK) {
    gw_load(p, x, gy, g, o0, k0, j0, hi, threadIdx.x, s);
    __syncthreads();
    tile_fma(s, threadIdx.x, acc);
    __syncthreads();
  }
  gw_store(p, gw, g, o0, k0, threadIdx.x, acc);
}

// grid (O), 256 threads: gb[o] = sum over n, oh, ow of gy[n, o].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    conv_gb_kernel(int N, int O, long long hw, const T* __restrict__ gy, T* __restrict__ gb) {
  __shared__ T part[kThreads];
  const int o = blockIdx.x;
  T acc = T(0);
  for (int n = 0; n < N; ++n) {
    const T* r = gy + (static_cast<long long>(n) * O + o) * hw;
    for (long long i = threadIdx.x; i < hw; i += kThreads) acc += r[i];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int step = kThreads / 2; step > 0; step /= 2) {
    if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
    __syncthreads();
  }
  if (threadIdx.x == 0) gb[o] = part[0];
}

unsigned blocks(long long n, int per) { return static_cast<unsigned>((n + per - 1) / per); }

// Splits of the grad-weight reduction for tiles of bm output channels x bn taps: enough
// blocks to fill a large GPU (~4 per SM on 132 SMs), each still reducing over at least
// min_slices slices of bk (4 of 16 for conv_gw_kernel, 8 of 8 for the fast kernel).
int gw_splits(const Geo& p, int bm = kBM, int bn = kBN, int bk = kBK, int min_slices = 4) {
  const long long tiles = static_cast<long long>(blocks(p.K, bn)) * blocks(p.Og, bm) * p.G;
  const long long slices = (p.NJ + bk - 1) / bk;
  long long s = std::max<long long>(1, 512 / std::max<long long>(tiles, 1));
  s = std::min<long long>(s, std::max<long long>(1, slices / min_slices));
  s = std::min<long long>(s, std::max<long long>(1, 65535 / p.G));
  return static_cast<int>(s);
}

// The phase kernels serve input-dilated stride-1 convs whose kernel fits kMaxPhaseTaps.
inline bool use_phases(const Geo& p) {
  return p.sh == 1 && p.sw == 1 && (p.dih > 1 || p.diw > 1) && p.KH <= kMaxPhaseTaps &&
         p.KW <= kMaxPhaseTaps && static_cast<long long>(p.dih) * p.diw <= 4096;
}

}  // namespace conv_detail

using namespace conv_detail;

// The fast float kernels: no input dilation; 32-bit offsets, so x, y and the weight below 2^31
// elements; at least 64 taps (below that, for a 3-channel input layer, the table and packing
// launches cost more than they save: 0.063 vs 0.047 ms for 64x3->32 32x32 on the H100).
bool fast_fits(const Geo& q) {
  const long long limit = 1LL << 31;
  return q.dih == 1 && q.diw == 1 && q.K >= 64 &&
         q.N * static_cast<long long>(q.C) * q.H * q.W < limit && q.NJ * q.O < limit &&
         static_cast<long long>(q.G) * q.K * q.Og < limit;
}

// grad-weight with the fast kernel: tap and column tables, then BM x 128 tiles with the
// reduction over j split (gw_splits).
void conv_grad_weight_fast(const Geo& q, const float* x, const float* gy, float* gw,
                           cudaStream_t stream) {
  StreamScratch taps(sizeof(int4) * static_cast<size_t>(q.K), stream, "conv_grad_weight");
  StreamScratch cols(sizeof(int4) * static_cast<size_t>(q.NJ), stream, "conv_grad_weight");
  fast::conv_taps_kernel<<<std::max(blocks(q.K, kThreads), 1u), kThreads, 0, stream>>>(
      q, taps.as<int4>());
  PE_CUDA_CHECK_LAUNCH("conv_grad_weight");
  fast::conv_cols_kernel<<<static_cast<unsigned>(
                               std::clamp<long long>(blocks(q.NJ, kThreads), 1, 4096)),
                           kThreads, 0, stream>>>(q, cols.as<int4>());
  PE_CUDA_CHECK_LAUNCH("conv_grad_weight");
  const int bm = q.Og <= 64 ? 64 : 128;
  const int splits = gw_splits(q, bm, fast::BN, fast::BK, 8);
  const dim3 grid(blocks(q.K, fast::BN), blocks(q.Og, bm), q.G * splits);
  if (bm == 64)
    fast::conv_gw_fast_kernel<64>
        <<<grid, kThreads, 0, stream>>>(q, splits, x, gy, gw, taps.as<int4>(), cols.as<int4>());
  else
    fast::conv_gw_fast_kernel<128>
        <<<grid, kThreads, 0, stream>>>(q, splits, x, gy, gw, taps.as<int4>(), cols.as<int4>());
  PE_CUDA_CHECK_LAUNCH("conv_grad_weight");
}

// float, no input dilation: the tap table, then 64- or 128-row tiles (64 when Og <= 64, where
// a 128-row tile would be half idle).
void conv_forward_fast(const Geo& q, const float* x, const float* w, const float* bias, float* y,
                       cudaStream_t stream) {
  const long long wsize = static_cast<long long>(q.G) * q.K * q.Og;
  StreamScratch taps(sizeof(int4) * static_cast<size_t>(q.K), stream, "conv_forward");
  StreamScratch packed(sizeof(float) * static_cast<size_t>(wsize), stream, "conv_forward");
  fast::conv_taps_kernel<<<std::max(blocks(q.K, kThreads), 1u), kThreads, 0, stream>>>(
      q, taps.as<int4>());
  PE_CUDA_CHECK_LAUNCH("conv_forward");
  fast::conv_pack_weight_kernel<<<static_cast<unsigned>(
                                      std::clamp<long long>(blocks(wsize, kThreads), 1, 4096)),
                                  kThreads, 0, stream>>>(q, w, packed.as<float>());
  PE_CUDA_CHECK_LAUNCH("conv_forward");
  const float* wp = packed.as<float>();
  const unsigned cols = blocks(q.NJ, fast::BN);
  const int4* tp = taps.as<int4>();
  if (q.Og <= 64) {
    fast::conv_fwd_fast_kernel<64>
        <<<dim3(cols, blocks(q.Og, 64), q.G), kThreads, 0, stream>>>(q, x, wp, bias, y, tp);
  } else {  // 128 registers with two blocks per SM, 40 bytes spilled: measured faster than
            // the unspilled 149-register build at one block per SM (0.42 vs 0.56 ms, s2 case)
    fast::conv_fwd_fast_kernel<128>
        <<<dim3(cols, blocks(q.Og, 128), q.G), kThreads, 0, stream>>>(q, x, wp, bias, y, tp);
  }
  PE_CUDA_CHECK_LAUNCH("conv_forward");
}

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                  cudaStream_t stream) {
  const Geo q = make_geo(p);
  if (q.NJ == 0 || q.Og == 0) return;
  if (use_phases(q)) {  // one launch per output phase, no inserted zero multiplied
    PhaseGeo f;
    for (int rh = 0; rh < q.dih; ++rh)
      for (int rw = 0; rw < q.diw; ++rw) {
        if (!make_phase(q, rh, rw, f)) continue;
        const dim3 grid(blocks(f.NJ, kBN), blocks(q.Og, kBM), q.G);
        conv_phase_kernel<T><<<grid, kThreads, 0, stream>>>(q, f, x, w, bias, y);
        PE_CUDA_CHECK_LAUNCH("conv_forward");
      }
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (fast_fits(q)) {
      conv_forward_fast(q, x, w, bias, y, stream);
      return;
    }
  }
  const dim3 grid(blocks(q.NJ, kBN), blocks(q.Og, kBM), q.G);
  conv_fwd_kernel<T><<<grid, kThreads, 0, stream>>>(q, x, w, bias, y);
  PE_CUDA_CHECK_LAUNCH("conv_forward");
}

template <typename T>
void conv_grad_input(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  if (p.N == 0 || p.C == 0) return;
  const ConvParams a = conv_adjoint(p);
  if (p.O == 0) {  // nothing reaches the input
    PE_CUDA_CHECK(cudaMemsetAsync(gx, 0, sizeof(T) * p.N * p.C * p.H * p.W, stream),
                  "conv_grad_input");
    return;
  }
  conv_forward<T>(a, gy, w, static_cast<const T*>(nullptr), gx, stream);
}

template <typename T>
void conv_grad_weight(const ConvParams& p, const T* x, const T* gy, T* gw, cudaStream_t stream) {
  const int64_t wsize = p.O * (p.C / p.groups) * p.KH * p.KW;
  if (wsize == 0) return;
  PE_CUDA_CHECK(cudaMemsetAsync(gw, 0, sizeof(T) * wsize, stream), "conv_grad_weight");
  if (p.N == 0) return;
  // As on the CPU: a conv with input dilation and stride 1 reduces over its adjoint instead
  // (same bilinear form, input and output gradient swapped), which has no inserted zeros.
  const bool swap = (p.idil[0] != 1 || p.idil[1] != 1) && p.stride[0] == 1 && p.stride[1] == 1;
  const Geo q = make_geo(swap ? conv_adjoint(p) : p);
  const T* in = swap ? gy : x;
  const T* out = swap ? x : gy;
  if constexpr (std::is_same_v<T, float>) {
    if (fast_fits(q)) {
      conv_grad_weight_fast(q, in, out, gw, stream);
      return;
    }
  }
  const int splits = gw_splits(q);
  const dim3 grid(blocks(q.K, kBN), blocks(q.Og, kBM), q.G * splits);
  conv_gw_kernel<T><<<grid, kThreads, 0, stream>>>(q, splits, in, out, gw);
  PE_CUDA_CHECK_LAUNCH("conv_grad_weight");
}

template <typename T>
void conv_grad_bias(const ConvParams& p, const T* gy, T* gb, cudaStream_t stream) {
  if (p.O == 0) return;
  const long long hw = p.OH() * p.OW();
  if (p.N == 0 || hw == 0) {
    PE_CUDA_CHECK(cudaMemsetAsync(gb, 0, sizeof(T) * p.O, stream), "conv_grad_bias");
    return;
  }
  conv_gb_kernel<T><<<static_cast<unsigned>(p.O), kThreads, 0, stream>>>(
      static_cast<int>(p.N), static_cast<int>(p.O), hw, gy, gb);
  PE_CUDA_CHECK_LAUNCH("conv_grad_bias");
}

#define PYENGINE_INSTANTIATE_CUDA_CONV(T)                                                     \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*,          \
                                cudaStream_t);                                                \
  template void conv_grad_input<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t);  \
  template void conv_grad_weight<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t); \
  template void conv_grad_bias<T>(const ConvParams&, const T*, T*, cudaStream_t);
PYENGINE_INSTANTIATE_CUDA_CONV(float)
PYENGINE_INSTANTIATE_CUDA_CONV(double)
#undef PYENGINE_INSTANTIATE_CUDA_CONV

}  // namespace pyengine::cuda
