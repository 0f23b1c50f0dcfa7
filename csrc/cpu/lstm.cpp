// LSTM / GRU layer drivers: the GEMMs, the time loop and the bookkeeping of
// variable lengths. The fused pointwise passes are in cpu/isa/lstm_*.cpp.
// Contracts: cpu/lstm.h.
#include "cpu/lstm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "cpu/gemm.h"
#include "cpu/isa/lstm_kernels.h"

namespace pyengine::cpu {
namespace {

using rnn_detail::RnnKernels;

// Below this many hidden units per step (N*H), one thread runs the pointwise
// pass: forking a team costs a few microseconds, about what 8K units take.
constexpr int64_t kParallelMinUnits = 8192;

template <typename T>
RnnKernels<T> select_kernels();

template <>
RnnKernels<float> select_kernels<float>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return rnn_detail::avx512::rnn_f32();
    case Isa::AVX2: return rnn_detail::avx2::rnn_f32();
#endif
    default: return rnn_detail::generic::rnn_f32();
  }
}

// float64 exists for gradient checks; it need not be fast.
template <>
RnnKernels<double> select_kernels<double>() {
  return rnn_detail::generic::rnn_f64();
}

// ---- workspace -----------------------------------------------------------------
// A per-thread, 64-byte aligned buffer that grows and is reused, carved into
// the arrays one call needs (fresh pages are expensive on our VMs).
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(ptr_); }
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      ptr_ = std::aligned_alloc(64, rounded);
      if (ptr_ == nullptr) throw std::bad_alloc();
      cap_ = rounded;
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

thread_local Workspace t_ws;

// Carves arrays of T out of t_ws: declare the sizes with want(), then take().
template <typename T>
class Carver {
 public:
  // Reserves n elements (rounded up to 64 bytes) and returns the slot's index.
  int want(int64_t n) {
    sizes_[count_] = (n * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64;
    return count_++;
  }
  void allocate() {
    size_t total = 0;
    for (int k = 0; k < count_; ++k) total += static_cast<size_t>(sizes_[k]);
    base_ = static_cast<char*>(t_ws.get(std::max<size_t>(total, 64)));
  }
  T* take(int slot) const {
    size_t off = 0;
    for (int k = 0; k < slot; ++k) off += static_cast<size_t>(sizes_[k]);
    return reinterpret_cast<T*>(base_ + off);
  }

 private:
  int64_t sizes_[8] = {};
  int count_ = 0;
  char* base_ = nullptr;
};

// Runs f(n) for n in [0, N), over the team when the step is big enough.
template <class F>
void for_rows(int64_t N, int64_t H, const F& f) {
  const int nt = get_num_threads();
  if (nt > 1 && N > 1 && N * H >= kParallelMinUnits) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t n = 0; n < N; ++n) f(n);
  } else {
    for (int64_t n = 0; n < N; ++n) f(n);
  }
}

// out[j] = sum over rows r of a[r*ld + j], j < cols (overwrite).
template <typename T>
void column_sums(int64_t rows, int64_t cols, const T* a, int64_t ld, T* out) {
  constexpr int64_t kBlock = 256;  // columns per task: a 1 KiB accumulator row
  const int64_t nblocks = (cols + kBlock - 1) / kBlock;
  const int nt = get_num_threads();
  const bool par = nt > 1 && nblocks > 1 && rows * cols >= (int64_t{1} << 16);
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t j0 = b * kBlock, j1 = std::min(cols, j0 + kBlock);
    T* o = out + j0;
    for (int64_t j = 0; j < j1 - j0; ++j) o[j] = T(0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = a + r * ld + j0;
      for (int64_t j = 0; j < j1 - j0; ++j) o[j] += row[j];
    }
  }
}

// Row arithmetic of RnnShape (see lstm.h).
struct Rows {
  const RnnShape& s;
  int64_t first(int64_t t) const { return s.batch_first ? t : t * s.N; }  // row(t, 0)
  int64_t stride() const { return s.batch_first ? s.T : 1; }              // row(t, n+1) - row(t, n)
  int64_t step(int64_t k) const { return s.reverse ? s.T - 1 - k : k; }   // t of the k-th step
  bool active(int64_t t, int64_t n) const { return !s.lengths || t < s.lengths[n]; }
};

template <typename T>
void copy_rows(int64_t N, int64_t H, const T* src, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t n = 0; n < N; ++n) std::memcpy(dst + n * ldd, src + n * lds, H * sizeof(T));
}

}  // namespace

// ================================================================ LSTM

template <typename T>
void lstm_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                        const T* b_hh, const T* h0, const T* c0, T* y, int64_t ldy, T* h_n, T* c_n,
                        const LstmSaved<T>& saved) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N;
  if (N == 0) return;
  const RnnKernels<T> K = select_kernels<T>();
  const Rows R{s};
  const int64_t rs = R.stride();

  const bool own = !saved.gates || !saved.c || !saved.h_prev;
  const bool has_bias = b_ih || b_hh;
  Carver<T> ws;
  const int sb = has_bias ? ws.want(G) : -1;
  const int sg = own ? ws.want(TN * G) : -1, sc = own ? ws.want(TN * H) : -1,
            sh = own ? ws.want(TN * H) : -1;
  ws.allocate();
  T* gates = own ? ws.take(sg) : saved.gates;
  T* cs = own ? ws.take(sc) : saved.c;
  T* hs = own ? ws.take(sh) : saved.h_prev;

  // Input projection of every step, with b_ih + b_hh in the epilogue.
  Epilogue<T> ep;
  if (has_bias) {
    T* b = ws.take(sb);
    for (int64_t j = 0; j < G; ++j) b[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh ? b_hh[j] : T(0));
    ep.bias = b;
    ep.bias_kind = BiasKind::PerCol;
  }
  gemm<T>(false, true, TN, G, s.I, T(1), x, s.I, w_ih, s.I, T(0), gates, G, ep);

  copy_rows(N, H, h0, H, hs + R.first(R.step(0)) * H, rs * H);
  const int64_t ldg = rs * G, ldh = rs * H;
  for (int64_t k = 0; k < s.T; ++k) {
    const int64_t t = R.step(k);
    T* g_t = gates + R.first(t) * G;
    const T* hp_t = hs + R.first(t) * H;
    T* c_t = cs + R.first(t) * H;
    const T* cp = k == 0 ? c0 : cs + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    gemm<T>(false, true, N, G, H, T(1), hp_t, ldh, w_hh, H, T(1), g_t, ldg);
    for_rows(N, H, [&](int64_t n) {
      T* yrow = y ? y + (R.first(t) + n * rs) * ldy : nullptr;
      if (R.active(t, n)) {
        K.lstm_fwd(H, g_t + n * ldg, cp + n * ldcp, c_t + n * ldh, hnext + n * ldhn, yrow);
      } else {  // carry the state, output 0
        std::memcpy(c_t + n * ldh, cp + n * ldcp, H * sizeof(T));
        std::memcpy(hnext + n * ldhn, hp_t + n * ldh, H * sizeof(T));
        if (yrow) std::memset(yrow, 0, H * sizeof(T));
      }
    });
  }
  copy_rows(N, H, cs + R.first(R.step(s.T - 1)) * H, rs * H, c_n, H);
}

template <typename T>
void lstm_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* c0,
                         const LstmSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n,
                         const T* dc_n, T* dx, bool dx_accumulate, T* dh0, T* dc0, T* dw_ih,
                         T* dw_hh, T* db) {
  const int64_t N = s.N, H = s.H, G = 4 * H, TN = s.T * s.N;
  const RnnKernels<T> K = select_kernels<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  Carver<T> ws;
  const int sd = ws.want(TN * G);
  ws.allocate();
  T* dgates = ws.take(sd);

  // dh0 / dc0 carry the state gradients through the loop and end as dh0 / dc0.
  for (int64_t e = 0; e < N * H; ++e) {
    dh0[e] = dh_n ? dh_n[e] : T(0);
    dc0[e] = dc_n ? dc_n[e] : T(0);
  }
  for (int64_t k = s.T - 1; k >= 0; --k) {
    const int64_t t = R.step(k);
    const T* g_t = saved.gates + R.first(t) * G;
    const T* c_t = saved.c + R.first(t) * H;
    const T* cp = k == 0 ? c0 : saved.c + R.first(R.step(k - 1)) * H;
    const int64_t ldcp = k == 0 ? H : ldh;
    T* dg_t = dgates + R.first(t) * G;
    for_rows(N, H, [&](int64_t n) {
      if (R.active(t, n)) {
        const T* dyrow = dy ? dy + (R.first(t) + n * rs) * ldy : nullptr;
        K.lstm_bwd(H, g_t + n * ldg, c_t + n * ldh, cp + n * ldcp, dyrow, dh0 + n * H, dc0 + n * H,
                   dg_t + n * ldg);
      } else {  // no gradient through an inactive step; dh, dc pass unchanged
        std::memset(dg_t + n * ldg, 0, G * sizeof(T));
      }
    });
    // lstm_bwd zeroed dh of the active rows: this makes it dgates W_hh there.
    gemm<T>(false, false, N, H, G, T(1), dg_t, ldg, w_hh, H, T(1), dh0, H);
  }
  gemm<T>(true, false, G, s.I, TN, T(1), dgates, G, x, s.I, T(0), dw_ih, s.I);
  gemm<T>(true, false, G, H, TN, T(1), dgates, G, saved.h_prev, H, T(0), dw_hh, H);
  if (db) column_sums(TN, G, dgates, G, db);
  if (dx)
    gemm<T>(false, false, TN, s.I, G, T(1), dgates, G, w_ih, s.I, dx_accumulate ? T(1) : T(0), dx,
            s.I);
}

// ================================================================ GRU

template <typename T>
void gru_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                       const T* b_hh, const T* h0, T* y, int64_t ldy, T* h_n,
                       const GruSaved<T>& saved) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  if (N == 0) return;
  const RnnKernels<T> K = select_kernels<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;

  const bool own = !saved.gates || !saved.hn || !saved.h_prev;
  Carver<T> ws;
  const int sgh = ws.want(N * G);
  const int sg = own ? ws.want(TN * G) : -1, sn = own ? ws.want(TN * H) : -1,
            sh = own ? ws.want(TN * H) : -1;
  ws.allocate();
  T* gh = ws.take(sgh);
  T* gates = own ? ws.take(sg) : saved.gates;
  T* hn = own ? ws.take(sn) : saved.hn;
  T* hs = own ? ws.take(sh) : saved.h_prev;

  Epilogue<T> ep_i, ep_h;
  if (b_ih) ep_i = {b_ih, BiasKind::PerCol, Act::None};
  if (b_hh) ep_h = {b_hh, BiasKind::PerCol, Act::None};
  gemm<T>(false, true, TN, G, s.I, T(1), x, s.I, w_ih, s.I, T(0), gates, G, ep_i);

  copy_rows(N, H, h0, H, hs + R.first(R.step(0)) * H, ldh);
  for (int64_t k = 0; k < s.T; ++k) {
    const int64_t t = R.step(k);
    T* g_t = gates + R.first(t) * G;
    const T* hp_t = hs + R.first(t) * H;
    T* hn_t = hn + R.first(t) * H;
    T* hnext = k + 1 < s.T ? hs + R.first(R.step(k + 1)) * H : h_n;
    const int64_t ldhn = k + 1 < s.T ? ldh : H;
    gemm<T>(false, true, N, G, H, T(1), hp_t, ldh, w_hh, H, T(0), gh, G, ep_h);
    for_rows(N, H, [&](int64_t n) {
      T* yrow = y ? y + (R.first(t) + n * rs) * ldy : nullptr;
      if (R.active(t, n)) {
        K.gru_fwd(H, g_t + n * ldg, gh + n * G, hp_t + n * ldh, hn_t + n * ldh, hnext + n * ldhn,
                  yrow);
      } else {
        std::memcpy(hnext + n * ldhn, hp_t + n * ldh, H * sizeof(T));
        if (yrow) std::memset(yrow, 0, H * sizeof(T));
      }
    });
  }
}

template <typename T>
void gru_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                        const GruSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n, T* dx,
                        bool dx_accumulate, T* dh0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh) {
  const int64_t N = s.N, H = s.H, G = 3 * H, TN = s.T * s.N;
  const RnnKernels<T> K = select_kernels<T>();
  const Rows R{s};
  const int64_t rs = R.stride(), ldg = rs * G, ldh = rs * H;
  Carver<T> ws;
  const int si = ws.want(TN * G), sh = ws.want(TN * G);
  ws.allocate();
  T* dgi = ws.take(si);
  T* dgh = ws.take(sh);

  for (int64_t e = 0; e < N * H; ++e) dh0[e] = dh_n ? dh_n[e] : T(0);
  for (int64_t k = s.T - 1; k >= 0; --k) {
    const int64_t t = R.step(k);
    const T* g_t = saved.gates + R.first(t) * G;
    const T* hn_t = saved.hn + R.first(t) * H;
    const T* hp_t = saved.h_prev + R.first(t) * H;
    T* dgi_t = dgi + R.first(t) * G;
    T* dgh_t = dgh + R.first(t) * G;
    for_rows(N, H, [&](int64_t n) {
      if (R.active(t, n)) {
        const T* dyrow = dy ? dy + (R.first(t) + n * rs) * ldy : nullptr;
        K.gru_bwd(H, g_t + n * ldg, hn_t + n * ldh, hp_t + n * ldh, dyrow, dh0 + n * H,
                  dgi_t + n * ldg, dgh_t + n * ldg);
      } else {
        std::memset(dgi_t + n * ldg, 0, G * sizeof(T));
        std::memset(dgh_t + n * ldg, 0, G * sizeof(T));
      }
    });
    // gru_bwd left dh*z in dh0 for the active rows; add dgh W_hh.
    gemm<T>(false, false, N, H, G, T(1), dgh_t, ldg, w_hh, H, T(1), dh0, H);
  }
  gemm<T>(true, false, G, s.I, TN, T(1), dgi, G, x, s.I, T(0), dw_ih, s.I);
  gemm<T>(true, false, G, H, TN, T(1), dgh, G, saved.h_prev, H, T(0), dw_hh, H);
  if (db_ih) column_sums(TN, G, dgi, G, db_ih);
  if (db_hh) column_sums(TN, G, dgh, G, db_hh);
  if (dx)
    gemm<T>(false, false, TN, s.I, G, T(1), dgi, G, w_ih, s.I, dx_accumulate ? T(1) : T(0), dx,
            s.I);
}

template <typename T>
void rnn_math(int fn, int64_t n, const T* x, T* y) {
  select_kernels<T>().math(fn, n, x, y);
}

#define PE_INSTANTIATE(T)                                                                          \
  template void lstm_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,     \
                                      const T*, const T*, const T*, T*, int64_t, T*, T*,           \
                                      const LstmSaved<T>&);                                        \
  template void lstm_layer_backward<T>(const RnnShape&, const T*, const T*, const T*, const T*,    \
                                       const LstmSaved<T>&, const T*, int64_t, const T*, const T*, \
                                       T*, bool, T*, T*, T*, T*, T*);                              \
  template void gru_layer_forward<T>(const RnnShape&, const T*, const T*, const T*, const T*,      \
                                     const T*, const T*, T*, int64_t, T*, const GruSaved<T>&);     \
  template void gru_layer_backward<T>(const RnnShape&, const T*, const T*, const T*,               \
                                      const GruSaved<T>&, const T*, int64_t, const T*, T*, bool,   \
                                      T*, T*, T*, T*, T*);                                         \
  template void rnn_math<T>(int, int64_t, const T*, T*);
PE_INSTANTIATE(float)
PE_INSTANTIATE(double)
#undef PE_INSTANTIATE

}  // namespace pyengine::cpu
