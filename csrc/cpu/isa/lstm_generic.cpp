// LSTM / GRU pointwise kernels, portable path: one element per "vector".
// float32 uses the same exp / sigmoid / tanh as the SIMD paths (lstm_pointwise.h),
// so every ISA computes the same function; float64 uses the C library.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/isa/lstm_kernels.h"
#include "cpu/isa/lstm_pointwise.h"

namespace pyengine::cpu::rnn_detail {
namespace {

template <typename Elem>
struct ScalarBase {
  using T = Elem;
  using R = Elem;
  static constexpr int W = 1;
  static R set1(T x) { return x; }
  static R loadu(const T* p) { return *p; }
  static R load_part(const T* p, int n) { return n > 0 ? *p : T(0); }
  static void storeu(T* p, R v) { *p = v; }
  static void store_part(T* p, R v, int n) {
    if (n > 0) *p = v;
  }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R fnma(R a, R b, R c) { return c - a * b; }
  static R min(R a, R b) { return a < b ? a : b; }  // b if either is NaN, as x86
  static R max(R a, R b) { return a > b ? a : b; }
  static R abs(R a) { return std::fabs(a); }
  static R select_lt(R a, R b, R x, R y) { return a < b ? x : y; }
  static R recip(R d) { return T(1) / d; }
  static R copysign(R mag, R sgn) { return std::copysign(mag, sgn); }
};

struct ScalarF32 : ScalarBase<float> {
  static R round(R x) { return std::nearbyint(x); }
  static R pow2(R n) {  // 2^n for integer-valued n in [-126, 127]; NaN n gives 1 (p is NaN)
    // Converting NaN to int is undefined behaviour, hence the guard; the shift is unsigned.
    const int32_t k = n == n ? static_cast<int32_t>(n) : 0;
    const uint32_t bits = static_cast<uint32_t>(k + 127) << 23;
    float out;
    std::memcpy(&out, &bits, sizeof(out));
    return out;
  }
  static R exp(R x) { return vexp<ScalarF32>(x); }
  static R sigmoid(R x) { return vsigmoid<ScalarF32>(x); }
  static R tanh(R x) { return vtanh<ScalarF32>(x); }
};

struct ScalarF64 : ScalarBase<double> {
  static R exp(R x) { return std::exp(x); }
  static R sigmoid(R x) { return 1.0 / (1.0 + std::exp(-x)); }
  static R tanh(R x) { return std::tanh(x); }
};

}  // namespace

RnnKernels<float> generic::rnn_f32() { return make_kernels<ScalarF32>(); }
RnnKernels<double> generic::rnn_f64() { return make_kernels<ScalarF64>(); }

}  // namespace pyengine::cpu::rnn_detail
