// Internal: the ISA-specific part of the recurrent kernels (cpu/lstm.cpp is the
// rest): the fused pointwise passes of the LSTM and GRU cells, one row (one
// batch element, H hidden units) at a time.
//
// Each ISA file (lstm_generic.cpp, lstm_avx2.cpp, lstm_avx512.cpp) hands out one
// table of function pointers per dtype. Like gemm_kernels.h, this header holds
// only plain data types and getters: the code behind them is compiled with the
// ISA's flags and kept out of reach of the linker's ODR merging.
//
// Row contracts (all arrays row-major, hidden index j in [0, H)):
//   lstm_fwd(H, g, b, c_prev, c, h, y)
//     g: 4H pre-activations [i | f | g | o] (torch's order) to which b (4H, may be
//        null) is added, overwritten with the activations sigmoid(i), sigmoid(f),
//        tanh(g), sigmoid(o) (saved for backward).
//     c = f*c_prev + i*g and h = o*tanh(c) are written (overwrite); y (may be null)
//     gets a second copy of h. c may not alias c_prev.
//   lstm_bwd(H, g, c, c_prev, dy, dh, dc, dg, db)
//     g: the 4H activations of lstm_fwd; c the cell state it wrote; c_prev its input.
//     dh (in: gradient of h from the next step) is read, added to dy (null = 0), and
//     set to 0; dc (in: gradient of c from the next step) becomes the gradient of
//     c_prev; dg (4H, overwrite) gets the gradients of the 4H pre-activations; db
//     (4H, may be null) accumulates them (+= dg: a bias gradient's partial sum).
//   gru_fwd(H, gi, gh, h_prev, hn, h, y)
//     gi: 3H input pre-activations [r | z | n] (x W_ih^T + b_ih), overwritten with the
//        activations r, z, n; gh: 3H hidden pre-activations (h_prev W_hh^T + b_hh).
//     r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r*gh_n),
//     h = (1-z)*n + z*h_prev. hn = gh_n (saved for backward), h and y (may be null)
//     are written.
//   gru_bwd(H, g, hn, h_prev, dy, dh, dgi, dgh, dbi, dbh)
//     g: the 3H activations [r | z | n] of gru_fwd, hn its saved gh_n. dh (in: gradient
//     of h from the next step) plus dy (null = 0) is the gradient of h; dh is set to
//     the direct part of the gradient of h_prev (dh*z; the caller adds dgh W_hh).
//     dgi (3H, overwrite): gradients of gi; dgh (3H, overwrite): gradients of gh;
//     dbi += dgi and dbh += dgh (3H each, either may be null).
//   math(fn, n, x, y): y[k] = f(x[k]) for fn 0 = exp, 1 = sigmoid, 2 = tanh (the
//     vector math the kernels above use; exposed for accuracy tests).
#pragma once
#include <cstdint>

namespace pyengine::cpu::rnn_detail {

template <typename T>
struct RnnKernels {
  void (*lstm_fwd)(int64_t H, T* g, const T* b, const T* c_prev, T* c, T* h, T* y);
  void (*lstm_bwd)(int64_t H, const T* g, const T* c, const T* c_prev, const T* dy, T* dh, T* dc,
                   T* dg, T* db);
  void (*gru_fwd)(int64_t H, T* gi, const T* gh, const T* h_prev, T* hn, T* h, T* y);
  void (*gru_bwd)(int64_t H, const T* g, const T* hn, const T* h_prev, const T* dy, T* dh, T* dgi,
                  T* dgh, T* dbi, T* dbh);
  void (*math)(int fn, int64_t n, const T* x, T* y);
};

namespace generic {
RnnKernels<float> rnn_f32();
RnnKernels<double> rnn_f64();
}  // namespace generic
namespace avx2 {
RnnKernels<float> rnn_f32();
}  // namespace avx2
namespace avx512 {
RnnKernels<float> rnn_f32();
}  // namespace avx512

}  // namespace pyengine::cpu::rnn_detail
