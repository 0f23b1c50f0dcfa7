// Host emulation of cuda/conv.cu's kernels, for machines without a GPU: runs each block's
// 256 threads one phase at a time (all tile loads, then all multiply-adds: the two sides of
// __syncthreads) through the kernels' own __host__ __device__ tile functions, and checks
// forward, grad-input (the forward of the adjoint) and split grad-weight against direct
// loops over the taps of the definition, on random generalized geometries (float64).
// Built and run by tests/test_conv.py::test_cuda_kernels_host_emulation when nvcc exists.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "conv.cu"
using namespace pyengine::cuda;
using namespace pyengine::cuda::conv_detail;

static int g_phase_runs = 0;  // how many forwards took the phase path

template <typename T>
void emu_phases(const Geo& q, const T* x, const T* w, const T* bias, T* y) {
  static Tiles<T> s;
  std::vector<T> acc(kThreads * kTM * kTN);
  PhaseGeo f;
  for (int rh = 0; rh < q.dih; ++rh)
    for (int rw = 0; rw < q.diw; ++rw) {
      if (!make_phase(q, rh, rw, f)) continue;
      for (int g = 0; g < q.G; ++g)
        for (unsigned by = 0; by < blocks(q.Og, kBM); ++by)
          for (unsigned bx = 0; bx < blocks(f.NJ, kBN); ++bx) {
            std::fill(acc.begin(), acc.end(), T(0));
            for (int k0 = 0; k0 < f.K; k0 += kBK) {
              for (int t = 0; t < kThreads; ++t)
                phase_load(q, f, x, w, g, by * kBM, (long long)bx * kBN, k0, t, s);
              for (int t = 0; t < kThreads; ++t)
                tile_fma(s, t, *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
            }
            for (int t = 0; t < kThreads; ++t)
              phase_store(q, f, bias, y, g, by * kBM, (long long)bx * kBN, t,
                          *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
          }
    }
}

template <typename T>
void emu_forward(const ConvParams& P, const T* x, const T* w, const T* bias, T* y) {
  Geo q = make_geo(P);
  if (use_phases(q)) {
    emu_phases(q, x, w, bias, y);
    ++g_phase_runs;
    return;
  }
  static Tiles<T> s;
  std::vector<T> acc(kThreads * kTM * kTN);
  for (int g = 0; g < q.G; ++g)
    for (unsigned by = 0; by < blocks(q.Og, kBM); ++by)
      for (unsigned bx = 0; bx < blocks(q.NJ, kBN); ++bx) {
        std::fill(acc.begin(), acc.end(), T(0));
        for (int k0 = 0; k0 < q.K; k0 += kBK) {
          for (int t = 0; t < kThreads; ++t)
            fwd_load(q, x, w, g, by * kBM, (long long)bx * kBN, k0, t, s);
          for (int t = 0; t < kThreads; ++t)
            tile_fma(s, t, *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
        }
        for (int t = 0; t < kThreads; ++t)
          fwd_store(q, bias, y, g, by * kBM, (long long)bx * kBN, t,
                    *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
      }
}

template <typename T>
void emu_gw(const ConvParams& P0, const T* x0, const T* gy0, T* gw, size_t wsize) {
  std::fill(gw, gw + wsize, T(0));
  const bool swap = (P0.idil[0] != 1 || P0.idil[1] != 1) && P0.stride[0] == 1 && P0.stride[1] == 1;
  Geo q = make_geo(swap ? conv_adjoint(P0) : P0);
  const T* x = swap ? gy0 : x0;
  const T* gy = swap ? x0 : gy0;
  int splits = gw_splits(q);
  static Tiles<T> s;
  std::vector<T> acc(kThreads * kTM * kTN);
  for (unsigned bz = 0; bz < (unsigned)(q.G * splits); ++bz)
    for (unsigned by = 0; by < blocks(q.Og, kBM); ++by)
      for (unsigned bx = 0; bx < blocks(q.K, kBN); ++bx) {
        int g = bz / splits, split = bz % splits;
        long long lo, hi;
        split_range(q.NJ, splits, split, lo, hi);
        std::fill(acc.begin(), acc.end(), T(0));
        for (long long j0 = lo; j0 < hi; j0 += kBK) {
          for (int t = 0; t < kThreads; ++t) gw_load(q, x, gy, g, by * kBM, bx * kBN, j0, hi, t, s);
          for (int t = 0; t < kThreads; ++t)
            tile_fma(s, t, *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
        }
        for (int t = 0; t < kThreads; ++t)
          gw_store(q, gw, g, by * kBM, bx * kBN, t,
                   *reinterpret_cast<T(*)[kTM][kTN]>(&acc[t * 16]));
      }
}

// naive reference from the definition (taps), canonical weight via explicit formula
struct Naive {
  const ConvParams& p;
  long long wi(int g, int o, int c, int kh, int kw) const {
    int Cg = p.C / p.groups, Og = p.O / p.groups;
    if (p.flip) {
      kh = p.KH - 1 - kh;
      kw = p.KW - 1 - kw;
    }
    return p.wtrans ? (((long long)(g * Cg + c) * Og + o) * p.KH + kh) * p.KW + kw
                    : (((long long)(g * Og + o) * Cg + c) * p.KH + kh) * p.KW + kw;
  }
  template <typename F>
  void taps(F f) const {
    int Cg = p.C / p.groups, Og = p.O / p.groups, OH = p.OH(), OW = p.OW();
    for (int n = 0; n < p.N; ++n)
      for (int g = 0; g < p.groups; ++g)
        for (int o = 0; o < Og; ++o)
          for (int oh = 0; oh < OH; ++oh)
            for (int ow = 0; ow < OW; ++ow)
              for (int c = 0; c < Cg; ++c)
                for (int kh = 0; kh < p.KH; ++kh)
                  for (int kw = 0; kw < p.KW; ++kw) {
                    long long qh = oh * p.stride[0] - p.pad_lo[0] + kh * p.kdil[0];
                    long long qw = ow * p.stride[1] - p.pad_lo[1] + kw * p.kdil[1];
                    if (qh < 0 || qw < 0 || qh % p.idil[0] || qw % p.idil[1]) continue;
                    long long ih = qh / p.idil[0], iw = qw / p.idil[1];
                    if (ih >= p.H || iw >= p.W) continue;
                    long long yi = (((long long)n * p.O + g * Og + o) * OH + oh) * OW + ow;
                    long long xi = (((long long)n * p.C + g * Cg + c) * p.H + ih) * p.W + iw;
                    f(yi, xi, wi(g, o, c, kh, kw));
                  }
  }
};

int main() {
  std::mt19937 rng(1);
  auto U = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  std::normal_distribution<double> nd;
  int fails = 0, ran = 0;
  for (int it = 0; it < 300; ++it) {
    ConvParams p;
    p.groups = U(1, 3);
    int Cg = U(1, 5), Og = U(1, 5);
    if (it % 10 == 0) {
      Cg = U(20, 40);
      Og = U(60, 90);
    }  // several tiles
    p.C = Cg * p.groups;
    p.O = Og * p.groups;
    p.N = U(1, 3);
    p.H = U(1, 12);
    p.W = U(1, 12);
    p.KH = U(1, 4);
    p.KW = U(1, 4);
    for (int d = 0; d < 2; ++d) {
      p.stride[d] = U(1, 3);
      p.kdil[d] = U(1, 2);
      p.idil[d] = U(1, 3);
      p.pad_lo[d] = U(-1, 3);
      p.pad_hi[d] = U(-1, 3);
    }
    if (it % 3 == 0) {
      p.idil[0] = p.idil[1] = 1;
    }
    if (it % 4 == 1) {
      p.stride[0] = p.stride[1] = 1;
    }
    p.flip = U(0, 1);
    p.wtrans = U(0, 1);
    if (p.OH() < 1 || p.OW() < 1) continue;
    ++ran;
    long long xs = p.N * p.C * p.H * p.W, ws = p.O * Cg * p.KH * p.KW,
              ys = p.N * p.O * p.OH() * p.OW();
    std::vector<double> x(xs), w(ws), b(p.O), gy(ys);
    for (auto* v : {&x, &w, &b, &gy})
      for (auto& e : *v) e = nd(rng);
    std::vector<double> y(ys, NAN), yr(ys, 0), gx(xs, NAN), gxr(xs, 0), gw(ws, NAN), gwr(ws, 0);
    Naive nv{p};
    nv.taps([&](long long yi, long long xi, long long wi) {
      yr[yi] += w[wi] * x[xi];
      gxr[xi] += w[wi] * gy[yi];
      gwr[wi] += gy[yi] * x[xi];
    });
    for (long long i = 0; i < ys; ++i) yr[i] += b[(i / (p.OH() * p.OW())) % p.O];
    emu_forward(p, x.data(), w.data(), b.data(), y.data());
    ConvParams a = conv_adjoint(p);
    if (a.OH() != p.H || a.OW() != p.W) {
      printf("adjoint size mismatch\n");
      ++fails;
      continue;
    }
    emu_forward<double>(a, gy.data(), w.data(), nullptr, gx.data());
    emu_gw(p, x.data(), gy.data(), gw.data(), ws);
    auto err = [](const std::vector<double>& u, const std::vector<double>& v) {
      double m = 0;
      for (size_t i = 0; i < u.size(); ++i)
        m = std::max(m, std::isnan(u[i]) ? 1e9 : std::fabs(u[i] - v[i]));
      return m;
    };
    double e1 = err(y, yr), e2 = err(gx, gxr), e3 = err(gw, gwr);
    if (e1 > 1e-9 || e2 > 1e-9 || e3 > 1e-9) {
      ++fails;
      printf("FAIL it=%d e=%g %g %g\n", it, e1, e2, e3);
    }
  }
  printf("phase path: %d forwards\n", g_phase_runs);
  if (g_phase_runs == 0) ++fails;
  printf("ran %d cases, %d failures\n", ran, fails);
  return fails != 0;
}
