// _cuda bindings of the pooling family (cuda/pool.h): device pointers, NCHW shapes, the window
// parameters, a dtype name and the caller's stream. Python (pyengine/backend/cuda.py) allocates
// the outputs with CuPy (pool2d_output_shape gives their shape); every argument is checked here
// with the rules of the CPU bindings before anything is enqueued.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "core/error.h"
#include "pool.h"

namespace py = pybind11;

namespace {

using pyengine::cuda::Pool2d;
using Pair = std::array<int64_t, 2>;
using Shape = std::array<int64_t, 4>;
using Ptr = std::uintptr_t;

bool is_f32(const char* op, const std::string& dtype) {
  PE_CHECK_TYPE(dtype == "float32" || dtype == "float64", op,
                "dtype must be 'float32' or 'float64' but is '", dtype, "'");
  return dtype == "float32";
}

void check_shape(const char* op, const Shape& s) {
  PE_CHECK(s[0] >= 0 && s[1] > 0 && s[2] > 0 && s[3] > 0, op,
           "expects an (N, C, H, W) shape with nonzero C, H, W but got (", s[0], ", ", s[1], ", ",
           s[2], ", ", s[3], ")");
}

void check_ptrs(const char* op, int64_t n, std::initializer_list<Ptr> ptrs) {
  if (n == 0) return;
  for (Ptr p : ptrs) PE_CHECK(p != 0, op, "a device pointer is null");
}

cudaStream_t stream_of(Ptr s) { return pyengine::cuda::stream_from_int(s); }

// Window geometry and output size with PyTorch's checks (as csrc/bindings/pool.cpp).
Pool2d window(const char* op, const Shape& s, Pair k, Pair st, Pair p, Pair d, bool ceil_mode) {
  check_shape(op, s);
  PE_CHECK(k[0] > 0 && k[1] > 0, op, "kernel size should be greater than zero, but got kH: ", k[0],
           " kW: ", k[1]);
  PE_CHECK(st[0] > 0 && st[1] > 0, op, "stride should be greater than zero, but got dH: ", st[0],
           " dW: ", st[1]);
  PE_CHECK(d[0] > 0 && d[1] > 0, op,
           "dilation should be greater than zero, but got dilationH: ", d[0], " dilationW: ", d[1]);
  PE_CHECK(p[0] >= 0 && p[1] >= 0 && p[0] <= k[0] / 2 && p[1] <= k[1] / 2, op,
           "pad should be smaller than or equal to half of kernel size, but got padW = ", p[1],
           ", padH = ", p[0], ", kW = ", k[1], ", kH = ", k[0]);
  Pool2d g;
  g.planes = s[0] * s[1];
  g.H = s[2];
  g.W = s[3];
  g.kH = k[0];
  g.kW = k[1];
  g.sH = st[0];
  g.sW = st[1];
  g.pH = p[0];
  g.pW = p[1];
  g.dH = d[0];
  g.dW = d[1];
  g.OH = pyengine::cpu::pool_output_size(g.H, g.kH, g.sH, g.pH, g.dH, ceil_mode);
  g.OW = pyengine::cpu::pool_output_size(g.W, g.kW, g.sW, g.pW, g.dW, ceil_mode);
  PE_CHECK(g.OH >= 1 && g.OW >= 1, op, "Given input size: (", s[1], "x", g.H, "x", g.W,
           "). Calculated output size: (", s[1], "x", g.OH, "x", g.OW,
           "). Output size is too small");
  return g;
}

}  // namespace

namespace pyengine::cuda {

void register_pool(py::module_& m) {
  m.def(
      "pool2d_output_shape",
      [](const Shape& s, Pair k, Pair st, Pair p, Pair d, bool ceil_mode, const std::string& op) {
        const Pool2d g = window(op.c_str(), s, k, st, p, d, ceil_mode);
        return Shape{s[0], s[1], g.OH, g.OW};
      },
      py::arg("shape"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("ceil_mode"), py::arg("op") = "max_pool2d",
      "The checked (N, C, OH, OW) of a 2-D pooling of an (N, C, H, W) input.");

  m.def(
      "max_pool2d",
      [](Ptr x, Ptr y, Ptr idx, const Shape& s, Pair k, Pair st, Pair p, Pair d, bool ceil_mode,
         const std::string& dtype, Ptr stream) {
        constexpr const char* op = "max_pool2d";
        const Pool2d g = window(op, s, k, st, p, d, ceil_mode);
        const bool f32 = is_f32(op, dtype);
        check_ptrs(op, g.planes, {x, y});
        py::gil_scoped_release nogil;
        auto* ip = reinterpret_cast<int64_t*>(idx);
        if (f32)
          max_pool2d_forward<float>(g, reinterpret_cast<const float*>(x),
                                    reinterpret_cast<float*>(y), ip, stream_of(stream));
        else
          max_pool2d_forward<double>(g, reinterpret_cast<const double*>(x),
                                     reinterpret_cast<double*>(y), ip, stream_of(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("shape"), py::arg("kernel_size"),
      py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
      py::arg("dtype"), py::arg("stream"), "Max pooling; indices may be 0 (not written).");

  m.def(
      "max_pool2d_backward",
      [](Ptr gy, Ptr idx, Ptr gx, const Shape& gy_shape, int64_t H, int64_t W,
         const std::string& dtype, Ptr stream) {
        constexpr const char* op = "max_pool2d_backward";
        check_shape(op, gy_shape);
        PE_CHECK(H > 0 && W > 0, op, "input size must be positive but is ", H, "x", W);
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = gy_shape[0] * gy_shape[1], out_hw = gy_shape[2] * gy_shape[3];
        check_ptrs(op, planes, {gy, idx, gx});
        py::gil_scoped_release nogil;
        const auto* ip = reinterpret_cast<const int64_t*>(idx);
        if (f32)
          max_pool2d_backward<float>(planes, H * W, out_hw, reinterpret_cast<const float*>(gy), ip,
                                     reinterpret_cast<float*>(gx), stream_of(stream));
        else
          max_pool2d_backward<double>(planes, H * W, out_hw, reinterpret_cast<const double*>(gy),
                                      ip, reinterpret_cast<double*>(gx), stream_of(stream));
      },
      py::arg("grad_output"), py::arg("indices"), py::arg("grad_input"), py::arg("shape"),
      py::arg("H"), py::arg("W"), py::arg("dtype"), py::arg("stream"),
      "Scatter-add of grad_output at indices into (N, C, H, W) zeros (atomicAdd).");

  m.def(
      "pool_gather",
      [](Ptr src, Ptr idx, Ptr out, const Shape& src_shape, const Shape& idx_shape,
         const std::string& dtype, Ptr stream) {
        constexpr const char* op = "pool_gather";
        check_shape(op, src_shape);
        PE_CHECK(idx_shape[0] == src_shape[0] && idx_shape[1] == src_shape[1] &&
                     idx_shape[2] >= 0 && idx_shape[3] >= 0,
                 op, "indices and src differ in N or C");
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = src_shape[0] * src_shape[1];
        const int64_t src_hw = src_shape[2] * src_shape[3], out_hw = idx_shape[2] * idx_shape[3];
        check_ptrs(op, planes * out_hw, {src, idx, out});
        py::gil_scoped_release nogil;
        const auto* ip = reinterpret_cast<const int64_t*>(idx);
        if (f32)
          pool_gather<float>(planes, src_hw, out_hw, reinterpret_cast<const float*>(src), ip,
                             reinterpret_cast<float*>(out), stream_of(stream));
        else
          pool_gather<double>(planes, src_hw, out_hw, reinterpret_cast<const double*>(src), ip,
                              reinterpret_cast<double*>(out), stream_of(stream));
      },
      py::arg("src"), py::arg("indices"), py::arg("out"), py::arg("src_shape"),
      py::arg("indices_shape"), py::arg("dtype"), py::arg("stream"),
      "out[n, c, i, j] = src[n, c].flat[indices[n, c, i, j]] (0 outside the plane).");

  m.def(
      "avg_pool2d",
      [](Ptr in, Ptr out, const Shape& x_shape, Pair k, Pair st, Pair p, bool ceil_mode, bool cip,
         int64_t divisor, bool backward, const std::string& dtype, Ptr stream) {
        const char* op = backward ? "avg_pool2d_backward" : "avg_pool2d";
        const Pool2d g = window(op, x_shape, k, st, p, {1, 1}, ceil_mode);
        const bool f32 = is_f32(op, dtype);
        check_ptrs(op, g.planes, {in, out});
        py::gil_scoped_release nogil;
        if (f32) {
          const auto* a = reinterpret_cast<const float*>(in);
          auto* b = reinterpret_cast<float*>(out);
          if (backward)
            avg_pool2d_backward<float>(g, cip, divisor, a, b, stream_of(stream));
          else
            avg_pool2d_forward<float>(g, cip, divisor, a, b, stream_of(stream));
        } else {
          const auto* a = reinterpret_cast<const double*>(in);
          auto* b = reinterpret_cast<double*>(out);
          if (backward)
            avg_pool2d_backward<double>(g, cip, divisor, a, b, stream_of(stream));
          else
            avg_pool2d_forward<double>(g, cip, divisor, a, b, stream_of(stream));
        }
      },
      py::arg("input"), py::arg("output"), py::arg("x_shape"), py::arg("kernel_size"),
      py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
      py::arg("divisor_override"), py::arg("backward"), py::arg("dtype"), py::arg("stream"),
      "Average pooling of an x_shape input (backward=False: input x, output y) or its gradient\n"
      "(backward=True: input grad_output, output grad_input of x_shape).");

  m.def(
      "adaptive_avg_pool2d",
      [](Ptr in, Ptr out, const Shape& x_shape, int64_t OH, int64_t OW, bool backward,
         const std::string& dtype, Ptr stream) {
        const char* op = backward ? "adaptive_avg_pool2d_backward" : "adaptive_avg_pool2d";
        check_shape(op, x_shape);
        PE_CHECK(OH > 0 && OW > 0, op, "output_size must be positive but is (", OH, ", ", OW, ")");
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
        check_ptrs(op, planes, {in, out});
        py::gil_scoped_release nogil;
        if (f32) {
          const auto* a = reinterpret_cast<const float*>(in);
          auto* b = reinterpret_cast<float*>(out);
          if (backward)
            adaptive_avg_pool2d_backward<float>(planes, H, W, OH, OW, a, b, stream_of(stream));
          else
            adaptive_avg_pool2d_forward<float>(planes, H, W, OH, OW, a, b, stream_of(stream));
        } else {
          const auto* a = reinterpret_cast<const double*>(in);
          auto* b = reinterpret_cast<double*>(out);
          if (backward)
            adaptive_avg_pool2d_backward<double>(planes, H, W, OH, OW, a, b, stream_of(stream));
          else
            adaptive_avg_pool2d_forward<double>(planes, H, W, OH, OW, a, b, stream_of(stream));
        }
      },
      py::arg("input"), py::arg("output"), py::arg("x_shape"), py::arg("OH"), py::arg("OW"),
      py::arg("backward"), py::arg("dtype"), py::arg("stream"),
      "Adaptive average pooling of an x_shape input, or its gradient (backward=True).");

  m.def(
      "adaptive_max_pool2d",
      [](Ptr x, Ptr y, Ptr idx, const Shape& s, int64_t OH, int64_t OW, const std::string& dtype,
         Ptr stream) {
        constexpr const char* op = "adaptive_max_pool2d";
        check_shape(op, s);
        PE_CHECK(OH > 0 && OW > 0, op, "output_size must be positive but is (", OH, ", ", OW, ")");
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = s[0] * s[1];
        check_ptrs(op, planes, {x, y});
        py::gil_scoped_release nogil;
        auto* ip = reinterpret_cast<int64_t*>(idx);
        if (f32)
          adaptive_max_pool2d_forward<float>(planes, s[2], s[3], OH, OW,
                                             reinterpret_cast<const float*>(x),
                                             reinterpret_cast<float*>(y), ip, stream_of(stream));
        else
          adaptive_max_pool2d_forward<double>(planes, s[2], s[3], OH, OW,
                                              reinterpret_cast<const double*>(x),
                                              reinterpret_cast<double*>(y), ip, stream_of(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("shape"), py::arg("OH"),
      py::arg("OW"), py::arg("dtype"), py::arg("stream"),
      "Adaptive max pooling; indices may be 0 (not written).");

  m.def(
      "max_unpool2d",
      [](Ptr x, Ptr idx, Ptr y, const Shape& s, int64_t OH, int64_t OW, const std::string& dtype,
         Ptr stream) {
        constexpr const char* op = "max_unpool2d";
        check_shape(op, s);
        PE_CHECK(OH > 0 && OW > 0, op, "output size must be positive but is (", OH, ", ", OW, ")");
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = s[0] * s[1];
        check_ptrs(op, planes, {x, idx, y});
        py::gil_scoped_release nogil;
        const auto* ip = reinterpret_cast<const int64_t*>(idx);
        if (f32)
          max_unpool2d_forward<float>(planes, s[2] * s[3], OH * OW,
                                      reinterpret_cast<const float*>(x), ip,
                                      reinterpret_cast<float*>(y), stream_of(stream));
        else
          max_unpool2d_forward<double>(planes, s[2] * s[3], OH * OW,
                                       reinterpret_cast<const double*>(x), ip,
                                       reinterpret_cast<double*>(y), stream_of(stream));
      },
      py::arg("x"), py::arg("indices"), py::arg("y"), py::arg("shape"), py::arg("OH"),
      py::arg("OW"), py::arg("dtype"), py::arg("stream"),
      "Scatter x at indices into (N, C, OH, OW) zeros; out-of-range indices are skipped (the\n"
      "caller checks them first).");

  m.def(
      "upsample_nearest2d",
      [](Ptr in, Ptr out, const Shape& x_shape, int64_t fH, int64_t fW, bool backward,
         const std::string& dtype, Ptr stream) {
        const char* op = backward ? "upsample_nearest2d_backward" : "upsample_nearest2d";
        check_shape(op, x_shape);
        PE_CHECK(fH > 0 && fW > 0, op, "scale factors must be positive integers but are ", fH, ", ",
                 fW);
        const bool f32 = is_f32(op, dtype);
        const int64_t planes = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
        check_ptrs(op, planes, {in, out});
        py::gil_scoped_release nogil;
        if (f32) {
          const auto* a = reinterpret_cast<const float*>(in);
          auto* b = reinterpret_cast<float*>(out);
          if (backward)
            upsample_nearest2d_backward<float>(planes, H, W, fH, fW, a, b, stream_of(stream));
          else
            upsample_nearest2d_forward<float>(planes, H, W, fH, fW, a, b, stream_of(stream));
        } else {
          const auto* a = reinterpret_cast<const double*>(in);
          auto* b = reinterpret_cast<double*>(out);
          if (backward)
            upsample_nearest2d_backward<double>(planes, H, W, fH, fW, a, b, stream_of(stream));
          else
            upsample_nearest2d_forward<double>(planes, H, W, fH, fW, a, b, stream_of(stream));
        }
      },
      py::arg("input"), py::arg("output"), py::arg("x_shape"), py::arg("fH"), py::arg("fW"),
      py::arg("backward"), py::arg("dtype"), py::arg("stream"),
      "Nearest upsampling of an x_shape input by integer factors, or its gradient.");
}

}  // namespace pyengine::cuda
