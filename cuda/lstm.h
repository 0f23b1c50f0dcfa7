// LSTM and GRU layers on CUDA, float and double: one layer, one direction per call.
//
// Same definitions, layout and variable-length rules as csrc/cpu/lstm.h (read the
// contract there): rows in the order row(t, n) = batch_first ? n*T + t : t*N + n, y
// with leading dimension ldy, states N x H, torch's weights and gate orders.
// Device pointers; `lengths` is a device array of N int64 in [1, T] or null.
// Enqueued on `stream`; nothing synchronizes.
//
// Method: the input projection of all steps is one GEMM (cuda/gemm.h, b_ih in its
// epilogue); per step one GEMM with W_hh and one fused pointwise kernel (b_hh is
// added there for the LSTM, in the GEMM epilogue for the GRU). Backward runs the
// time loop on the device: per step the fused pointwise backward kernel and
// dh += dgates W_hh; then dW_ih, dW_hh and dx are single GEMMs over all steps and the
// bias gradients column sums.
//
// The saved arrays are required (the caller allocates them): LSTM gates (T*N x 4H,
// activations), c_saved, h_saved (T*N x H); GRU gates (T*N x 3H), hn_saved, h_saved.
// Scratch, also the caller's: LSTM backward dgates (T*N x 4H); GRU forward gh (N x 3H);
// GRU backward dgi, dgh (T*N x 3H each).
// Overwritten: y, h_n, c_n, saved arrays (forward); dh0, dc0, dw_*, db* (backward);
// dx overwritten, or accumulated into when dx_accumulate.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyengine::cuda {

struct RnnShape {
  int64_t T = 0, N = 0, I = 0, H = 0;
  bool batch_first = false, reverse = false;
  const int64_t* lengths = nullptr;  // device, N values, or null
};

template <typename T>
void lstm_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                        const T* b_hh, const T* h0, const T* c0, T* y, int64_t ldy, T* h_n, T* c_n,
                        T* gates, T* c_saved, T* h_saved, cudaStream_t stream);

template <typename T>
void lstm_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* c0,
                         const T* gates, const T* c_saved, const T* h_saved, const T* dy,
                         int64_t ldy, const T* dh_n, const T* dc_n, T* dx, bool dx_accumulate,
                         T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db, T* dgates, cudaStream_t stream);

template <typename T>
void gru_layer_forward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* b_ih,
                       const T* b_hh, const T* h0, T* y, int64_t ldy, T* h_n, T* gates, T* hn_saved,
                       T* h_saved, T* gh, cudaStream_t stream);

template <typename T>
void gru_layer_backward(const RnnShape& s, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                        const T* hn_saved, const T* h_saved, const T* dy, int64_t ldy,
                        const T* dh_n, T* dx, bool dx_accumulate, T* dh0, T* dw_ih, T* dw_hh,
                        T* db_ih, T* db_hh, T* dgi, T* dgh, cudaStream_t stream);

}  // namespace pyengine::cuda
