// One generalized 2-D convolution on the CPU (NCHW), float and double.
//
// Every convolution-shaped op is this one kernel with different parameters:
//   conv2d                 stride s, padding p, dilation d, groups
//   conv_transpose2d       input_dilation = s, flip, transposed weight, pad_lo = d*(k-1) - p,
//                          pad_hi = d*(k-1) - p + output_padding
//   grad-input of any conv the forward of conv_adjoint(p) (a transposed conv)
//   grad-weight            a correlation of the input with the output gradient
//
// Definition (per spatial dim; H shown): the input is dilated by idil (idil-1 zeros between
// rows), padded by pad_lo / pad_hi zeros (a negative pad crops), and correlated with the
// kernel dilated by kdil at stride s:
//   y[n, g*Og + o, oh, ow] = bias[g*Og + o] + sum_{c < Cg, kh, kw} Wc(g, o, c, kh, kw) *
//                            xd[n, g*Cg + c, oh*s - pad_lo + kh*kdil, ...]
//   xd[.., q, ..] = x[.., q / idil, ..] if q % idil == 0 and 0 <= q / idil < H, else 0
//   OH = ((H-1)*idil + 1 + pad_lo + pad_hi - ((KH-1)*kdil + 1)) / s + 1   (floor; >= 0)
// Cg = C / groups, Og = O / groups. The weight as stored:
//   wtrans == false: w is (O, Cg, KH, KW)   [conv2d's layout]
//   wtrans == true:  w is (C, Og, KH, KW)   [conv_transpose2d's layout]
// and Wc(g, o, c, kh, kw) reads it at (kh, kw), or at (KH-1-kh, KW-1-kw) when flip.
//
// All arrays are C-contiguous. Outputs are OVERWRITTEN (never accumulated into):
//   conv_forward      x (N, C, H, W), w, bias (O) or null   -> y  (N, O, OH, OW)
//   conv_grad_input   gy (N, O, OH, OW), w                  -> gx (N, C, H, W)
//   conv_grad_weight  x (N, C, H, W), gy (N, O, OH, OW)      -> gw (w's layout)
//   conv_grad_bias    gy (N, O, OH, OW)                      -> gb (O)
// Method: float32 on AVX-512 with >= 8 output channels per group (or at least as many output
// as input channels) and not both stride and input dilation: a direct convolution over flat,
// padded copies of each image (cpu/isa/conv_kernels.h; no im2col); depthwise convs there: 16
// channels per vector. Otherwise im2col onto the GEMM of cpu/gemm.h (1x1, stride 1, unpadded:
// straight GEMM), or, when idil > 1 and stride == 1 (transposed convs, grad-input of strided
// convs), the GEMM followed by col2im, which does no multiply-adds on the inserted zeros;
// depthwise convs use direct loops. Scratch comes from per-thread workspaces that grow and are
// reused. Threads: OpenMP over (image, group) pairs when there are enough, else the GEMM's own
// threads (and the copies around it); pyengine::get_num_threads(). Results do not depend on the
// thread count except for float rounding in grad-weight (per-thread partial sums, fixed order).
// Shapes are the caller's to check (the bindings do); the caller holds no GIL.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

struct ConvParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  int64_t O = 0;                       // output channels
  int64_t KH = 1, KW = 1;              // kernel
  int64_t groups = 1;
  int64_t stride[2] = {1, 1};
  int64_t pad_lo[2] = {0, 0};
  int64_t pad_hi[2] = {0, 0};
  int64_t kdil[2] = {1, 1};  // kernel dilation
  int64_t idil[2] = {1, 1};  // input dilation
  bool flip = false;         // read the kernel rotated by 180 degrees
  bool wtrans = false;       // weight stored (C, O/groups, KH, KW)

  int64_t OH() const;
  int64_t OW() const;
};

// Output length of one dimension (the formula above); negative when the kernel does not fit.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t kdil, int64_t idil);

// The convolution whose forward is p's grad-input: channels swapped (C <-> O), input size
// (OH, OW), stride = p.idil, idil = p.stride, pad_lo = (K-1)*kdil - p.pad_lo, pad_hi chosen
// so that its output is (H, W), flip and wtrans toggled (same weight buffer).
ConvParams conv_adjoint(const ConvParams& p);

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

template <typename T>
void conv_grad_input(const ConvParams& p, const T* gy, const T* w, T* gx);

template <typename T>
void conv_grad_weight(const ConvParams& p, const T* x, const T* gy, T* gw);

template <typename T>
void conv_grad_bias(const ConvParams& p, const T* gy, T* gb);

}  // namespace pyengine::cpu
