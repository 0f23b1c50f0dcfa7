// Pooling on the CPU: max / average / adaptive pooling, max-unpooling and
// nearest-neighbour upsampling by integer factors, forward and backward.
//
// Common contract (every kernel below):
//   Layout NCHW, C-contiguous; a "plane" is one (n, c) image of H x W elements
//   and the N*C planes are processed independently (`planes` = N*C). Inputs are
//   read-only, outputs are OVERWRITTEN (backward kernels too: they write the
//   whole gradient, they do not accumulate into it). Indices are int64, flat
//   within a plane: h*W + w, as PyTorch's.
//   Parameters are checked by the bindings (csrc/bindings/pool.cpp), not here:
//   sizes >= 1 (planes may be 0), output sizes as pool_output_size gives them,
//   padding <= kernel/2, strides/dilations >= 1.
//   Threads: OpenMP over planes, pyengine::get_num_threads(); the caller holds no
//   GIL. Scratch comes from per-thread workspaces that grow and are reused.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

// One 2-D pooling window geometry (PyTorch's names; d = dilation, p = padding on
// both sides).
struct Pool2d {
  int64_t planes = 0;
  int64_t H = 0, W = 0, OH = 0, OW = 0;
  int64_t kH = 1, kW = 1, sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1;
};

// PyTorch's pooling output size: floor or ceil of (in + 2p - d(k-1) - 1)/s + 1;
// with ceil_mode the last window must start inside the input or the left padding.
// May return < 1 (the caller rejects that).
inline int64_t pool_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                                bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// y[p][oh][ow] = max over the window (rows oh*sH - pH + kh*dH, columns likewise,
// only those inside the plane; padding never wins). NaN propagates as PyTorch's:
// a NaN wins and a later NaN wins over an earlier one; ties keep the first in
// row-major window order. idx (may be null) gets the winner's h*W + w, or, when
// nothing beats -inf, the window's first in-plane position. x: planes x H x W,
// y/idx: planes x OH x OW.
template <typename T>
void max_pool2d_forward(const Pool2d& g, const T* x, T* y, int64_t* idx);

// Scatter-add, the adjoint of max pooling (and adaptive max pooling):
// gx[p][*] = 0, then gx[p][idx[p][o]] += gy[p][o] for every o < out_hw (in order,
// so a position chosen by several windows gets their sum). Indices outside
// [0, in_hw) are skipped. gx: planes x in_hw (overwritten), gy/idx: planes x out_hw.
template <typename T>
void max_pool2d_backward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* gy,
                         const int64_t* idx, T* gx);

// Gather, the adjoint of the scatter above and of max_unpool2d:
// out[p][o] = src[p][idx[p][o]], or 0 where idx is outside [0, src_hw).
// src: planes x src_hw, idx/out: planes x out_hw.
template <typename T>
void pool_gather(int64_t planes, int64_t src_hw, int64_t out_hw, const T* src, const int64_t* idx,
                 T* out);

// y = sum over the window's in-plane elements / divisor, where divisor is
// divisor_override if nonzero, else the window size clipped to the padded plane
// (count_include_pad) or to the plane. dH = dW = 1 (g's dilation is ignored).
template <typename T>
void avg_pool2d_forward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y);

// The adjoint: gx = 0, then every window's in-plane elements get += gy / divisor.
template <typename T>
void avg_pool2d_backward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                         const T* gy, T* gx);

// Adaptive windows: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), columns likewise.
// y = mean over the window. x: planes x H x W, y: planes x OH x OW.
template <typename T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y);
// gx = 0, then each window gets += gy / window size.
template <typename T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const T* gy, T* gx);
// Max over the adaptive window with the rules of max_pool2d_forward; idx may be
// null. The backward is max_pool2d_backward.
template <typename T>
void adaptive_max_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, int64_t* idx);

// The first flat position (into idx, planes x in_hw) whose index lies outside
// [0, out_hw), or -1 if all are valid. Run before max_unpool2d_forward.
int64_t max_unpool2d_find_bad_index(int64_t planes, int64_t in_hw, int64_t out_hw,
                                    const int64_t* idx);
// y[p][*] = 0, then y[p][idx[p][i]] = x[p][i] for i in order (a later write wins).
// All indices must be valid (see above). x/idx: planes x in_hw, y: planes x out_hw.
// The backward is pool_gather.
template <typename T>
void max_unpool2d_forward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* x,
                          const int64_t* idx, T* y);

// Nearest-neighbour upsampling by integer factors: y[p][oh][ow] =
// x[p][oh / fH][ow / fW]; x: planes x H x W, y: planes x (H*fH) x (W*fW).
template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                const T* x, T* y);
// The adjoint: gx[p][h][w] = sum of gy over the fH x fW block that copied it.
template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                 const T* gy, T* gx);

}  // namespace pyengine::cpu
