// Recurrent layers on the CPU: LSTM and GRU, one layer and one direction per
// call, forward and backward through time, with PyTorch's formulas and gate
// order (LSTM: i, f, g, o; GRU: r, z, n).
//
// Layout (row-major, like C arrays). A "row" is one (time step t, batch element
// n) pair; every per-step array (x, y and the saved arrays) stores its rows in
// one order:   row(t, n) = batch_first ? n*T + t : t*N + n
// so x is the (T*N) x I matrix of an input of shape (T, N, I) or, batch_first,
// (N, T, I). y has the same rows with leading dimension ldy: element (t, n, j) is
// y[row(t, n)*ldy + j] (pass y + H, ldy = 2H for the reverse half of a
// bidirectional output). h0, c0, h_n, c_n, dh0, dc0 are N x H.
// Weights as torch: w_ih is (G*H) x I, w_hh is (G*H) x H, biases G*H (G = 4 for
// LSTM, 3 for GRU); a null bias means no bias.
//
// Variable lengths: lengths (null = every sequence has T steps) holds N values
// in [1, T]. Sequence n is active at step t iff t < lengths[n]. An inactive step
// writes y = 0 and leaves the state alone, so h_n / c_n are the states after each
// sequence's last valid step, and the reverse direction of sequence n starts at
// t = lengths[n] - 1 from h0 (what torch's packed sequences give).
//
// Algorithm: the weights are packed once per call into the GEMM microkernel's
// layout (cpu/isa/gemm_kernels.h) and the time loop runs in one OpenMP region whose
// threads own whole blocks of batch rows, so no barrier is needed between steps.
//   LSTM forward, T > 1: per step ONE GEMM [x_t | h_prev] [W_ih | W_hh]^T (K = I + H)
//     straight into the step's gates, then the fused pointwise pass (biases added
//     there). Measured against the textbook order (all input projections as one
//     (T*N) x 4H GEMM first), this saves the bias pass and the round trip of the
//     T*N x 4H pre-activations through memory: 0.93x -> 0.97x of oneDNN on 1 core.
//   GRU forward, T > 1: the input projection of all steps as ONE GEMM (b_ih in its
//     epilogue; the n gate needs x W_in^T apart from h W_hn^T), then per step
//     gh = h_prev W_hh^T + b_hh and the fused pointwise pass.
//   T == 1 (a cell): ordinary GEMMs (nothing to amortize the packing over).
//   An all-zero h0 (what hx=None gives) leaves out the first step's h_prev W_hh^T, which is
//   zero: 1/(2T) of the forward's multiplies when I == H (LSTM T32 N64 I=H=512 forward 18.34
//   -> 18.08 ms, GRU 14.36 -> 14.17 ms, in-process A/B on Zen 5). As BLAS with alpha == 0, the
//   skipped operand is not read: NaN or Inf in W_hh does not reach that step's gates.
// Backward runs through time inside the kernel: per step the fused pointwise
// backward and dh_prev += dgates W_hh; after the loop dW_ih, dW_hh, dx are single
// GEMMs over all steps and the bias gradients column sums.
//
// Threads: OpenMP inside the GEMMs and over the batch rows of the pointwise
// passes, pyengine::get_num_threads(); the caller holds no GIL. Scratch comes
// from a per-thread workspace that grows and is reused.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

struct RnnShape {
  int64_t T, N, I, H;      // steps, batch, input size, hidden size; T, H >= 1
  bool batch_first;        // the row order above
  bool reverse;            // process t = T-1 down to 0
  const int64_t* lengths;  // null or N values in [1, T]
};

// What forward keeps for backward, every array in row order. Null pointers
// (inference) make the kernel use its workspace instead; all or none are given.
//   LSTM: gates (T*N) x 4H: the activations [i f g o] of each step;
//         c (T*N) x H: the cell state after each step (carried over inactive steps);
//         h_prev (T*N) x H: the hidden state each step started from.
//   GRU:  gates (T*N) x 3H: the activations [r z n]; hn (T*N) x H: h_prev W_hn^T + b_hn;
//         h_prev (T*N) x H as for LSTM.
template <typename T>
struct LstmSaved {
  T* gates = nullptr;
  T* c = nullptr;
  T* h_prev = nullptr;
};
template <typename T>
struct GruSaved {
  T* gates = nullptr;
  T* hn = nullptr;
  T* h_prev = nullptr;
};

// LSTM forward: y (may be null), h_n, c_n and the saved arrays are overwritten.
template <typename T>
void lstm_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                        const T* b_hh, const T* h0, const T* c0, T* y, int64_t ldy, T* h_n, T* c_n,
                        const LstmSaved<T>& saved);

// LSTM backward from the saved arrays of lstm_layer_forward (same s, x, weights, c0).
// dy (ldy; may be null = 0), dh_n, dc_n (may be null = 0) are the gradients of the
// outputs. Overwritten: dh0, dc0, dw_ih, dw_hh, db (may be null; the gradient of
// b_ih, which equals that of b_hh). dx (may be null) is overwritten, or accumulated
// into when dx_accumulate (the second direction of a bidirectional layer).
template <typename T>
void lstm_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* c0,
                         const LstmSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n,
                         const T* dc_n, T* dx, bool dx_accumulate, T* dh0, T* dc0, T* dw_ih,
                         T* dw_hh, T* db);

// GRU forward: y (may be null), h_n and the saved arrays are overwritten.
template <typename T>
void gru_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                       const T* b_hh, const T* h0, T* y, int64_t ldy, T* h_n,
                       const GruSaved<T>& saved);

// GRU backward; as lstm_layer_backward, with separate bias gradients db_ih, db_hh
// (each may be null; overwritten).
template <typename T>
void gru_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh,
                        const GruSaved<T>& saved, const T* dy, int64_t ldy, const T* dh_n, T* dx,
                        bool dx_accumulate, T* dh0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh);

// The vector math of the pointwise passes on an array, for accuracy tests:
// y = f(x) elementwise, fn 0 = exp, 1 = sigmoid, 2 = tanh (active ISA).
template <typename T>
void rnn_math(int fn, int64_t n, const T* x, T* y);

}  // namespace pyengine::cpu
