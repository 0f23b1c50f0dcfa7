// Host emulation of cuda/pool.cu, for machines without a GPU: runs the kernels' own
// __host__ __device__ element functions over every element index (what the grid-stride
// loops do), in float64, on a case that tests/test_pool.py writes; the test compares the
// results with the NumPy reference (tests/reference/pool.py).
//
//   pool_emu CASE OUT
// CASE: int64 header[20] = {op, N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, ceil_mode,
//       count_include_pad, divisor_override, OH, OW, fH, fW}, then float64 x (N*C*H*W),
//       for op 5 int64 indices (N*C*H*W), then float64 g (the output's gradient).
//       op: 0 max_pool2d, 1 avg_pool2d, 2 adaptive_avg_pool2d, 3 adaptive_max_pool2d,
//       4 nearest upsampling, 5 max_unpool2d (OH, OW = its output size).
// OUT:  float64 y, [int64 indices for ops 0 and 3], float64 grad_input.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "pool.cu"
using namespace pyengine::cuda;
using namespace pyengine::cuda::pool_detail;

template <typename U>
static bool read(FILE* f, std::vector<U>& v, int64_t n) {
  v.resize(static_cast<size_t>(n));
  return n == 0 || std::fread(v.data(), sizeof(U), v.size(), f) == v.size();
}

template <typename U>
static void write(FILE* f, const std::vector<U>& v) {
  if (!v.empty()) std::fwrite(v.data(), sizeof(U), v.size(), f);
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* in = std::fopen(argv[1], "rb");
  if (!in) return 2;
  std::vector<int64_t> h;
  if (!read(in, h, 20)) return 3;
  const int64_t op = h[0], N = h[1], C = h[2], H = h[3], W = h[4];
  const int64_t planes = N * C, in_n = planes * H * W;
  Pool2d g;
  g.planes = planes;
  g.H = H;
  g.W = W;
  g.kH = h[5], g.kW = h[6], g.sH = h[7], g.sW = h[8], g.pH = h[9], g.pW = h[10];
  g.dH = op == 1 ? 1 : h[11];
  g.dW = op == 1 ? 1 : h[12];
  const bool ceil_mode = h[13] != 0, cip = h[14] != 0;
  const int64_t div = h[15], fH = h[18], fW = h[19];
  int64_t OH = h[16], OW = h[17];
  if (op == 0 || op == 1) {
    OH = g.OH = pyengine::cpu::pool_output_size(H, g.kH, g.sH, g.pH, g.dH, ceil_mode);
    OW = g.OW = pyengine::cpu::pool_output_size(W, g.kW, g.sW, g.pW, g.dW, ceil_mode);
  } else if (op == 4) {
    OH = H * fH;
    OW = W * fW;
  }
  const int64_t out_n = planes * OH * OW;
  std::vector<double> x, gy, y(static_cast<size_t>(out_n)), gx(static_cast<size_t>(in_n), 0.0);
  std::vector<int64_t> idx;
  if (!read(in, x, in_n)) return 3;
  if (op == 5 && !read(in, idx, in_n)) return 3;
  if (!read(in, gy, out_n)) return 3;
  std::fclose(in);
  if (op == 0 || op == 3) idx.resize(static_cast<size_t>(out_n));

  switch (op) {
    case 0:
      for (int64_t e = 0; e < out_n; ++e) max_pool_elem(g, x.data(), y.data(), idx.data(), e);
      for (int64_t e = 0; e < out_n; ++e)
        scatter_add_elem(H * W, OH * OW, gy.data(), idx.data(), gx.data(), e);
      break;
    case 1:
      for (int64_t e = 0; e < out_n; ++e) avg_fwd_elem(g, cip, div, x.data(), y.data(), e);
      for (int64_t e = 0; e < in_n; ++e) avg_bwd_elem(g, cip, div, gy.data(), gx.data(), e);
      break;
    case 2:
      for (int64_t e = 0; e < out_n; ++e)
        adaptive_avg_fwd_elem(H, W, OH, OW, x.data(), y.data(), e);
      for (int64_t e = 0; e < in_n; ++e)
        adaptive_avg_bwd_elem(H, W, OH, OW, gy.data(), gx.data(), e);
      break;
    case 3:
      for (int64_t e = 0; e < out_n; ++e)
        adaptive_max_elem(H, W, OH, OW, x.data(), y.data(), idx.data(), e);
      for (int64_t e = 0; e < out_n; ++e)
        scatter_add_elem(H * W, OH * OW, gy.data(), idx.data(), gx.data(), e);
      break;
    case 4:
      for (int64_t e = 0; e < out_n; ++e) upsample_fwd_elem(H, W, fH, fW, x.data(), y.data(), e);
      for (int64_t e = 0; e < in_n; ++e) upsample_bwd_elem(H, W, fH, fW, gy.data(), gx.data(), e);
      break;
    case 5:
      std::fill(y.begin(), y.end(), 0.0);
      for (int64_t e = 0; e < in_n; ++e)
        unpool_elem(H * W, OH * OW, x.data(), idx.data(), y.data(), e);
      for (int64_t e = 0; e < in_n; ++e)
        gather_elem(OH * OW, H * W, gy.data(), idx.data(), gx.data(), e);
      break;
    default: return 4;
  }
  FILE* out = std::fopen(argv[2], "wb");
  if (!out) return 2;
  write(out, y);
  if (op == 0 || op == 3) write(out, idx);
  write(out, gx);
  std::fclose(out);
  std::printf("ok\n");
  return 0;
}
