// The generalized 2-D convolution on CUDA (NCHW), float and double.
//
// Same definition and parameters as csrc/cpu/conv.h (read the contract there): the input is
// dilated by idil, padded by pad_lo / pad_hi (negative crops), and correlated at `stride`
// with the kernel dilated by kdil, read rotated by 180 degrees when `flip`; the weight is
// (O, C/groups, KH, KW), or (C, O/groups, KH, KW) when `wtrans`.
//
// Device pointers, all C-contiguous; enqueued on `stream`, nothing synchronizes.
// Outputs are OVERWRITTEN:
//   conv_forward      x (N, C, H, W), w, bias (O) or null   -> y  (N, O, OH, OW)
//   conv_grad_input   gy (N, O, OH, OW), w                  -> gx (N, C, H, W)
//   conv_grad_weight  x, gy                                 -> gw (w's layout)
//   conv_grad_bias    gy                                    -> gb (O)
// Method: implicit GEMM (the im2col matrix is never stored: tiles of it are gathered into
// shared memory). Forward: per group, (Og) x (N*OH*OW) = W (Og x Cg*KH*KW) * cols.
// A conv with input dilation and stride 1 (transposed convs; the grad-input of strided convs)
// runs one such GEMM per output phase (oh mod idil_h, ow mod idil_w) over only the taps that
// meet real input elements, so no inserted zero is multiplied.
// grad-input: the forward of the adjoint convolution (stride <-> idil, flip and wtrans
// toggled). grad-weight: (Og) x (Cg*KH*KW) reduced over N*OH*OW, split over blocks and
// summed with atomicAdd (so its float rounding order is not fixed from run to run).
// float convs without input dilation and with at least 64 taps run the forward and the
// grad-weight on faster kernels (conv.cu, namespace fast) that take stream-ordered scratch
// (cudaMallocAsync): the weight packed k-major and index tables (16 bytes per tap, and per
// output position for the grad-weight).
// Sizes must fit in int32 per dimension and the bindings check them.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pyengine::cuda {

struct ConvParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  int64_t O = 0;                       // output channels
  int64_t KH = 1, KW = 1;
  int64_t groups = 1;
  int64_t stride[2] = {1, 1};
  int64_t pad_lo[2] = {0, 0};
  int64_t pad_hi[2] = {0, 0};
  int64_t kdil[2] = {1, 1};
  int64_t idil[2] = {1, 1};
  bool flip = false;
  bool wtrans = false;

  int64_t OH() const;
  int64_t OW() const;
};

// Output length of one dimension; negative when the kernel does not fit.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t kdil, int64_t idil);

// The convolution whose forward is p's grad-input (as cpu::conv_adjoint).
ConvParams conv_adjoint(const ConvParams& p);

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                  cudaStream_t stream);

template <typename T>
void conv_grad_input(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream);

template <typename T>
void conv_grad_weight(const ConvParams& p, const T* x, const T* gy, T* gw, cudaStream_t stream);

template <typename T>
void conv_grad_bias(const ConvParams& p, const T* gy, T* gb, cudaStream_t stream);

}  // namespace pyengine::cuda
