// Internal: the ISA-specific microkernel of the CPU convolution family (cpu/conv.cpp is the
// rest: geometry, padding copies, weight packing, threads).
//
// Direct stride-1 convolution over a "flat" padded image. With the input plane of channel c
// zero-padded to Hp x Wp and stored row after row, a stride-1 tap (kh, kw) of output (oh, ow)
// reads flat position q + off(kh, kw) with q = oh*Wp + ow and off = kh*dh*Wp + kw*dw. So over
// the flat index q the convolution is a 1-D correlation: consecutive outputs read consecutive
// inputs for every tap, and a vector of outputs is one unaligned vector load per tap, with no
// im2col copy. Positions with ow >= OW (the Wp - OW columns at the end of each flat row) are
// computed and thrown away by the caller.
//
// Only plain types and declarations here: the kernels live in anonymous namespaces of their
// ISA files (no inline code compiled with wide-ISA flags may reach a baseline caller).
#pragma once
#include <cstdint>

namespace pyengine::cpu::conv_detail {

// Output channels per tile (rows) and flat output positions per tile (columns).
constexpr int kDirectRows = 8;
constexpr int kDirectCols = 48;

// One 8 x 48 tile of outputs, overwritten into out (row i at out + i*48):
//   out[i][j] = init[i] + sum_{c < C, t < ntaps} w[(c*ntaps + t)*8 + i] * x[c*plane + off[t] + j]
// x: the flat padded planes of C channels, `plane` elements apart; reads up to
// x[(C-1)*plane + max(off) + 47]. w: packed weights, 8 output channels innermost.
using DirectTileF32 = void (*)(const float* x, int64_t plane, int64_t C, const int64_t* off,
                               int ntaps, const float* w, const float* init, float* out);

namespace avx512 {
DirectTileF32 direct_tile_f32();  // null when built without AVX-512
}  // namespace avx512

}  // namespace pyengine::cpu::conv_detail
