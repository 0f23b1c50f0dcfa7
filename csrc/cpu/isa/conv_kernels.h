// Internal: the ISA-specific microkernels of the CPU convolution family (cpu/conv.cpp is the
// rest: geometry, padding copies, weight packing, threads).
//
// Direct convolution over a "flat" padded image. With the input plane of channel c
// zero-padded to Hp x Wp and stored row after row, a stride-1 tap (kh, kw) of output (oh, ow)
// reads flat position q + off(kh, kw) with q = oh*Wp + ow and off = kh*dh*Wp + kw*dw. So over
// the flat index q the convolution is a 1-D correlation: consecutive outputs read consecutive
// inputs for every tap, and a vector of outputs is one unaligned vector load per tap, with no
// im2col copy. Positions with ow >= OW (the Wp - OW columns at the end of each flat row) are
// computed and thrown away by the caller. A stride s is brought back to this case by storing
// each channel as s0*s1 phase planes (padded element (r, v) in phase (r % s0, v % s1) at
// (r / s0, v / s1)): a tap then reads one phase plane at unit stride. The pixel tile (below)
// broadcasts its inputs one at a time, so it keeps one plane per channel and steps by the
// stride instead.
//
// Only plain types and declarations here: the kernels live in anonymous namespaces of their
// ISA files (no inline code compiled with wide-ISA flags may reach a baseline caller).
#pragma once
#include <cstdint>

namespace pyengine::cpu::conv_detail {

// Output channels per tile (rows) and flat output positions per tile (columns).
constexpr int kDirectRows = 8;
constexpr int kDirectCols = 48;

// One 8 x 16*nv tile of outputs, row i at out + i*ldo (the direct forward: ldo 48), columns
// [0, 16*nv):
//   out[i][j] = init[i] + sum_{c < C, t < ntaps} w[(c*ntaps + t)*8 + i] * x[c*plane + off[t] + j]
// overwritten (columns past 16*nv untouched). nv in 1..3.
// x: the flat padded planes of C channels, `plane` elements apart; reads up to
// x[(C-1)*plane + max(off) + 16*nv - 1]. w: packed weights, 8 output channels innermost.
// Winograd's per-xi products are the same tile with one tap at offset 0 and a zero init.
using DirectTileF32 = void (*)(int nv, const float* x, int64_t plane, int64_t C, const int64_t* off,
                               int ntaps, const float* w, const float* init, float* out,
                               int64_t ldo);

// Grad-weight of the same layout, vectorized over output channels. One tile is 6 (channel,
// tap) pairs x 16*nv output channels, accumulated into acc (row i at acc + i*ldacc):
//   acc[i][o] += sum_{r < rows, ow < OW} x[i][r*xrow + ow*xcol] * g[(r*OW + ow)*ldg + o]
// for o < 16*nv. x[i]: where pair i's tap reads for the first output of the chunk in a flat
// padded image of one plane per channel (the inputs are broadcast one at a time, so a stride
// is a step xcol, not a phase plane); g: the output gradient transposed to (position,
// channel), ldg apart; nv in 1..4.
constexpr int kGradWeightPairs = 6;
using GradWeightTileF32 = void (*)(int nv, const float* const* x, int64_t xrow, int64_t xcol,
                                   const float* g, int64_t ldg, int64_t rows, int64_t OW,
                                   float* acc, int64_t ldacc);

// The same sum vectorized over output channels instead, for images whose rows are too short
// for 48-wide tiles of flat positions (every computed output is a wanted one). One tile is 6
// outputs x 16*nv output channels, p < 6, o < 16*nv, row p at out + p*64, overwritten:
//   out[p][o] = init[p*ldinit + o]
//             + sum_{c < C, t < ntaps} x[p][c*plane + off[t]] * w[(c*ntaps + t)*64 + o]
// x[p]: where output p's taps are measured from (its flat position in the image); w: packed
// weights, 64 output channels innermost; init: the bias (ldinit 0) or partial sums (ldinit 64,
// may be out itself); nv in 1..4.
constexpr int kPixelTile = 6;
constexpr int kPixelBlock = 64;
using PixelTileF32 = void (*)(int nv, const float* const* x, int64_t plane, int64_t C,
                              const int64_t* off, int ntaps, const float* w, const float* init,
                              int64_t ldinit, float* out);

// A transpose with zero rows added: for j < cols, i < rows_out (rows_out >= rows),
//   dst[j*ldd + i] = i < rows ? src[i*lds + j] : 0,   overwritten.
// It turns the output gradient into the grad-weight tile's 64-channel tiles (rows_out 64) and
// the pixel tiles' (position, channel) outputs back into planes.
using TransposeF32 = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                              int64_t ldd, int64_t rows_out);

// Depthwise convs (one channel in and out per group), vectorized over 16 channels: images
// stored as (position, 16 channels) over a flat padded plane. One output row of n positions,
// overwritten:
//   out[j*16 + c] = init[c] + sum_{t < ntaps} w[t*16 + c] * x[(j*xs + off[t])*16 + c]
// (xs: the input step between outputs, i.e. the stride; off: tap offsets in positions), and
// its grad-weight over one row of the output gradient g, accumulated:
//   acc[t*16 + c] += sum_{j < n} g[j*16 + c] * x[(j*xs + off[t])*16 + c],   t < ntaps
using Depthwise16RowF32 = void (*)(int64_t n, const float* x, int64_t xs, const int64_t* off,
                                   int ntaps, const float* w, const float* init, float* out);
using Depthwise16GradF32 = void (*)(int64_t n, const float* g, const float* x, int64_t xs,
                                    const int64_t* off, int ntaps, float* acc);

// dst[j] = src[2j] for j < n (reads src[0 .. 2n - 2]): one phase of a row split by a stride
// of 2 (the polyphase copies of pad_flat).
using Gather2F32 = void (*)(const float* src, int64_t n, float* dst);

// A depthwise conv with column stride 2 on one channel plane in NCHW (no transposes: the
// 16-channel layout's transposes cost more than a stride-2 conv's arithmetic). Overwrites
//   out[oh*OW + j] = init + sum_{kh < KH, kw < KW} w[kh*KW + kw] * x[(oh*sh + kh*dh)*ld + 2j +
//   kw*dw]
// for oh < OH, j < OW. x: the padded plane (zeros where padding), each row readable up to
// 2 * 16*ceil(OW/16) + (KW-1)*dw + 32 floats.
using DepthwiseS2PlaneF32 = void (*)(const float* x, int64_t ld, int64_t OH, int64_t OW, int64_t sh,
                                     int64_t dh, int64_t dw, int KH, int KW, const float* w,
                                     float init, float* out);

// Winograd F(2x2, 3x3) (Lavin and Gray, 2015) for stride-1 3x3 convs: each 2x2 block of
// outputs ("tile") comes from its 4x4 input block d as Y = A^T [ sum_c U_c .* V_c ] A, with
// V = B^T d B and U = G g G^T per (output, input) channel pair: 16 products per tile and
// channel pair instead of 36. The sum over c for each of the 16 positions xi of the 4x4
// transform domain is a GEMM; these kernels are its input and output transforms (its tile is
// the direct forward's), and the grad-weight's output-gradient transform. The transforms of this
// size take only additions (G's halves are exact), so the result is as accurate as the direct sum
// (F(4x4, 3x3) was 20x worse in float32).
//
// Input transform of one run of cnt <= 16 tiles side by side in one tile row, all C channels;
// tile l's input block is d[r][j] = x[c*plane + (ih0 + r)*W + iw0 + 2l + j], r, j < 4 (zero
// outside 0 <= row < H, 0 <= col < W; only those elements are read). Overwrites
//   V[xi*ldxi + c*ldv + l] = (B^T d B)[xi / 4][xi % 4],   xi < 16, c < C, l < cnt,
// and writes something to lanes cnt <= l < 16 (whole-vector stores: leave room for them).
using WinoInputF32 = void (*)(const float* x, int64_t plane, int64_t C, int64_t H, int64_t W,
                              int64_t ih0, int64_t iw0, int cnt, float* V, int64_t ldv,
                              int64_t ldxi);
// Output transform of one run of cnt <= 16 tiles: for o < O, tile l, r, s < 2, overwrites
//   y[o*oplane + (oh0 + r)*OW + ow0 + 2l + s] = (A^T M A)[r][s] + bias[o]   (bias may be null)
// where M[xi / 4][xi % 4] = m[xi*ldxi + o*ldm + l]; only outputs inside OH x OW are written.
// Reads m[xi*ldxi + o*ldm + l] for l < 16 (lanes past cnt are read, not used).
using WinoOutputF32 = void (*)(const float* m, int64_t ldm, int64_t ldxi, int64_t O, int cnt,
                               const float* bias, float* y, int64_t oplane, int64_t OH, int64_t OW,
                               int64_t oh0, int64_t ow0);

// The output-gradient transform of the grad-weight (the forward's adjoint in U: dU = sum over
// tiles of (A e A^T) .* V, then dg = G^T dU G) for one run of cnt <= 16 tiles, all O channels:
// tile l's 2x2 block e[r][s] = gy[o*oplane + (oh0 + r)*OW + ow0 + 2l + s] (zero outside OH x OW;
// only inside elements are read). Overwrites
//   dm[xi*ldxi + o*ldm + l] = (A e A^T)[xi / 4][xi % 4],   l < cnt,
// and writes zeros to lanes cnt <= l < 16 (whole-vector stores).
using WinoGradOutputF32 = void (*)(const float* gy, int64_t oplane, int64_t O, int64_t OH,
                                   int64_t OW, int64_t oh0, int64_t ow0, int cnt, float* dm,
                                   int64_t ldm, int64_t ldxi);

namespace avx512 {
DirectTileF32 direct_tile_f32();               // null when built without AVX-512
PixelTileF32 pixel_tile_f32();                 // null when built without AVX-512
GradWeightTileF32 grad_weight_tile_f32();      // null when built without AVX-512
TransposeF32 transpose_f32();                  // null when built without AVX-512
Gather2F32 gather2_f32();                      // null when built without AVX-512
Depthwise16RowF32 depthwise16_row_f32();       // null when built without AVX-512
DepthwiseS2PlaneF32 depthwise_s2_plane_f32();  // null when built without AVX-512
Depthwise16GradF32 depthwise16_grad_f32();     // null when built without AVX-512
WinoInputF32 wino_input_f32();                 // null when built without AVX-512
WinoOutputF32 wino_output_f32();               // null when built without AVX-512
WinoGradOutputF32 wino_grad_output_f32();      // null when built without AVX-512
}  // namespace avx512

}  // namespace pyengine::cpu::conv_detail
