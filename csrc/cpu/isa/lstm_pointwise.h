// Internal: the fused LSTM / GRU pointwise passes and their vector math, written
// once as templates over a vector policy V and instantiated by each ISA file
// (lstm_generic.cpp, lstm_avx2.cpp, lstm_avx512.cpp) with a policy type from its
// own anonymous namespace, so every instantiation has internal linkage and code
// compiled with wide-ISA flags can never be picked for a baseline caller.
// Contracts of the row kernels: lstm_kernels.h.
//
// A policy V provides: T (element), R (register), W (lanes); set1, loadu,
// load_part(p, n) (lanes >= n read as 0), storeu, store_part(p, v, n); add, sub,
// mul, div, fma(a, b, c) = a*b + c, fnma(a, b, c) = c - a*b, min, max, abs;
// select_lt(a, b, x, y) = a < b ? x : y; recip(d) = 1/d; copysign(mag, sgn); and the
// functions exp, sigmoid, tanh (float policies forward them to vexp / vsigmoid / vtanh below; the
// float64 policy uses the C library).
#pragma once
#include <algorithm>
#include <cstdint>

namespace pyengine::cpu::rnn_detail {

// ---- float32 vector math -----------------------------------------------------
// exp(x): x = n*ln2 + r with n = round(x/ln2), |r| <= ln2/2; ln2 is split in a
// high part with 16 significant bits (n*ln2_hi is exact for |n| <= 128) and a
// low part, so r carries no rounding error worth counting (Cody & Waite). e^r by
// its Taylor series to r^7: the first term left out, r^8/8! <= 5.3e-9, is below
// half an ulp of 1. Then 2^n is put into the exponent field (V::pow2). x is
// clamped to [-87, 88] so that n stays in [-126, 127] (a normal 2^n): exp
// saturates at e^88 ~ 1.7e38 and e^-87 ~ 1.6e-38, which is all sigmoid and tanh
// need. Error: about 1 ulp over the range.
template <class V>
typename V::R vexp(typename V::R x) {
  using T = typename V::T;
  // Constant first: x86 min/max return the second operand when one is NaN, so NaN
  // passes through the clamp (and the whole function), as in torch.
  x = V::min(V::set1(T(88.0f)), V::max(V::set1(T(-87.0f)), x));
  const auto n = V::round(V::mul(x, V::set1(T(1.44269504088896341f))));
  auto r = V::fnma(n, V::set1(T(0.693145751953125f)), x);
  r = V::fnma(n, V::set1(T(1.42860682030941723212e-6f)), r);
  auto p = V::set1(T(1.0f / 5040.0f));
  p = V::fma(p, r, V::set1(T(1.0f / 720.0f)));
  p = V::fma(p, r, V::set1(T(1.0f / 120.0f)));
  p = V::fma(p, r, V::set1(T(1.0f / 24.0f)));
  p = V::fma(p, r, V::set1(T(1.0f / 6.0f)));
  p = V::fma(p, r, V::set1(T(0.5f)));
  p = V::fma(p, r, V::set1(T(1.0f)));
  p = V::fma(p, r, V::set1(T(1.0f)));
  return V::mul(p, V::pow2(n));
}

// sigmoid(x) = 1 / (1 + e^-x): exp's ~1 ulp, one rounded add, one reciprocal.
template <class V>
typename V::R vsigmoid(typename V::R x) {
  using T = typename V::T;
  const auto one = V::set1(T(1));
  return V::recip(V::add(one, vexp<V>(V::sub(V::set1(T(0)), x))));
}

// tanh(x) = m / (m + 2) with m = e^(2x) - 1 = expm1(2x). expm1 reuses exp's
// reduction 2x = n*ln2 + r and is assembled as 2^n * q(r) + (2^n - 1), where
// q(r) = e^r - 1 is the Taylor series without its constant term: no cancellation
// near 0 (n = 0 there, so m = q(r) to about an ulp), and for x -> -inf, m -> -1 and
// tanh -> -1. One exp-like evaluation and one division, no branch. Error: <= 3 ulp.
template <class V>
typename V::R vtanh(typename V::R x) {
  using T = typename V::T;
  const auto x2 = V::min(V::set1(T(88.0f)), V::max(V::set1(T(-87.0f)), V::add(x, x)));
  const auto n = V::round(V::mul(x2, V::set1(T(1.44269504088896341f))));
  auto r = V::fnma(n, V::set1(T(0.693145751953125f)), x2);
  r = V::fnma(n, V::set1(T(1.42860682030941723212e-6f)), r);
  auto q = V::set1(T(1.0f / 5040.0f));
  q = V::fma(q, r, V::set1(T(1.0f / 720.0f)));
  q = V::fma(q, r, V::set1(T(1.0f / 120.0f)));
  q = V::fma(q, r, V::set1(T(1.0f / 24.0f)));
  q = V::fma(q, r, V::set1(T(1.0f / 6.0f)));
  q = V::fma(q, r, V::set1(T(0.5f)));
  q = V::fma(q, r, V::set1(T(1.0f)));
  q = V::mul(q, r);  // e^r - 1
  const auto s = V::pow2(n);
  const auto m = V::fma(s, q, V::sub(s, V::set1(T(1))));  // e^(2x) - 1
  return V::div(m, V::add(m, V::set1(T(2))));
}

// ---- row kernels -------------------------------------------------------------
// Each walks the H hidden units in blocks of W lanes; the last block is partial
// (masked loads and stores), so no scalar tail and no out-of-bounds access.
template <class V>
struct Block {
  using T = typename V::T;
  using R = typename V::R;
  int64_t j;
  int n;
  R ld(const T* p) const { return n == V::W ? V::loadu(p + j) : V::load_part(p + j, n); }
  void st(T* p, R v) const {
    if (n == V::W)
      V::storeu(p + j, v);
    else
      V::store_part(p + j, v, n);
  }
};

template <class V, class F>
inline void for_blocks(int64_t H, F&& f) {
  for (int64_t j = 0; j < H; j += V::W)
    f(Block<V>{j, static_cast<int>(std::min<int64_t>(V::W, H - j))});
}

template <class V>
void lstm_fwd_row(int64_t H, typename V::T* g, const typename V::T* bias,
                  const typename V::T* c_prev, typename V::T* c, typename V::T* h,
                  typename V::T* y) {
  for_blocks<V>(H, [&](const Block<V>& b) {
    auto pre = [&](int64_t q) {
      const auto a = b.ld(g + q * H);
      return bias ? V::add(a, b.ld(bias + q * H)) : a;
    };
    const auto gi = V::sigmoid(pre(0));
    const auto gf = V::sigmoid(pre(1));
    const auto gg = V::tanh(pre(2));
    const auto go = V::sigmoid(pre(3));
    b.st(g, gi);
    b.st(g + H, gf);
    b.st(g + 2 * H, gg);
    b.st(g + 3 * H, go);
    const auto cn = V::fma(gf, b.ld(c_prev), V::mul(gi, gg));
    const auto hn = V::mul(go, V::tanh(cn));
    b.st(c, cn);
    b.st(h, hn);
    if (y) b.st(y, hn);
  });
}

template <class V>
void lstm_bwd_row(int64_t H, const typename V::T* g, const typename V::T* c,
                  const typename V::T* c_prev, const typename V::T* dy, typename V::T* dh,
                  typename V::T* dc, typename V::T* dg, typename V::T* db) {
  using T = typename V::T;
  const auto one = V::set1(T(1));
  const auto zero = V::set1(T(0));
  for_blocks<V>(H, [&](const Block<V>& b) {
    // dg row q, and db (when there is one) += it
    auto put = [&](int64_t q, typename V::R v) {
      b.st(dg + q * H, v);
      if (db) b.st(db + q * H, V::add(b.ld(db + q * H), v));
    };
    const auto gi = b.ld(g), gf = b.ld(g + H), gg = b.ld(g + 2 * H), go = b.ld(g + 3 * H);
    auto dht = b.ld(dh);
    if (dy) dht = V::add(dht, b.ld(dy));
    const auto tc = V::tanh(b.ld(c));
    const auto dgo = V::mul(dht, tc);                                          // d o
    const auto dct = V::fma(V::mul(dht, go), V::fnma(tc, tc, one), b.ld(dc));  // d c
    b.st(dc, V::mul(dct, gf));                                                 // d c_prev
    b.st(dh, zero);
    const auto di = V::mul(dct, gg), df = V::mul(dct, b.ld(c_prev)), dgg = V::mul(dct, gi);
    put(0, V::mul(V::mul(di, gi), V::sub(one, gi)));
    put(1, V::mul(V::mul(df, gf), V::sub(one, gf)));
    put(2, V::mul(dgg, V::fnma(gg, gg, one)));
    put(3, V::mul(V::mul(dgo, go), V::sub(one, go)));
  });
}

template <class V>
void gru_fwd_row(int64_t H, typename V::T* gi, const typename V::T* gh, const typename V::T* h_prev,
                 typename V::T* hn, typename V::T* h, typename V::T* y) {
  for_blocks<V>(H, [&](const Block<V>& b) {
    const auto r = V::sigmoid(V::add(b.ld(gi), b.ld(gh)));
    const auto z = V::sigmoid(V::add(b.ld(gi + H), b.ld(gh + H)));
    const auto ghn = b.ld(gh + 2 * H);
    const auto n = V::tanh(V::fma(r, ghn, b.ld(gi + 2 * H)));
    const auto hp = b.ld(h_prev);
    const auto hnew = V::fma(z, V::sub(hp, n), n);  // (1-z)*n + z*h_prev
    b.st(gi, r);
    b.st(gi + H, z);
    b.st(gi + 2 * H, n);
    b.st(hn, ghn);
    b.st(h, hnew);
    if (y) b.st(y, hnew);
  });
}

template <class V>
void gru_bwd_row(int64_t H, const typename V::T* g, const typename V::T* hn,
                 const typename V::T* h_prev, const typename V::T* dy, typename V::T* dh,
                 typename V::T* dgi, typename V::T* dgh, typename V::T* dbi, typename V::T* dbh) {
  using T = typename V::T;
  const auto one = V::set1(T(1));
  for_blocks<V>(H, [&](const Block<V>& b) {
    // row q of dgi and dgh, and dbi / dbh (where there are) += them
    auto put = [&](int64_t q, typename V::R vi, typename V::R vh) {
      b.st(dgi + q * H, vi);
      b.st(dgh + q * H, vh);
      if (dbi) b.st(dbi + q * H, V::add(b.ld(dbi + q * H), vi));
      if (dbh) b.st(dbh + q * H, V::add(b.ld(dbh + q * H), vh));
    };
    const auto r = b.ld(g), z = b.ld(g + H), n = b.ld(g + 2 * H);
    auto dht = b.ld(dh);
    if (dy) dht = V::add(dht, b.ld(dy));
    const auto dnp = V::mul(V::fnma(dht, z, dht), V::fnma(n, n, one));  // d(n pre-act)
    const auto dzp = V::mul(V::mul(dht, V::sub(b.ld(h_prev), n)), V::mul(z, V::sub(one, z)));
    const auto drp = V::mul(V::mul(dnp, b.ld(hn)), V::mul(r, V::sub(one, r)));
    put(0, drp, drp);
    put(1, dzp, dzp);
    put(2, dnp, V::mul(dnp, r));
    b.st(dh, V::mul(dht, z));
  });
}

template <class V>
void math_rows(int fn, int64_t n, const typename V::T* x, typename V::T* y) {
  for_blocks<V>(n, [&](const Block<V>& b) {
    const auto v = b.ld(x);
    b.st(y, fn == 0 ? V::exp(v) : fn == 1 ? V::sigmoid(v) : V::tanh(v));
  });
}

template <class V>
RnnKernels<typename V::T> make_kernels() {
  return {&lstm_fwd_row<V>, &lstm_bwd_row<V>, &gru_fwd_row<V>, &gru_bwd_row<V>, &math_rows<V>};
}

}  // namespace pyengine::cpu::rnn_detail
