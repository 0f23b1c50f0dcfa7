// Bindings of the pooling family (contracts in cpu/pool.h). Every function takes
// C-contiguous 4-D NCHW float32/float64 arrays (pyengine.ops.pool reshapes 3-D
// inputs), checks all arguments, allocates its outputs, then releases the GIL.
#include "cpu/pool.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;
using pyengine::cpu::Pool2d;

namespace {

using Pair = std::array<int64_t, 2>;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A 4-D C-contiguous float32/float64 array with nonzero C, H, W (N may be 0).
void check_nchw(const char* op, const char* name, const py::array& a) {
  check_float(op, name, a);
  PE_CHECK(a.ndim() == 4, op, name, " must be 4-D (N, C, H, W) but has shape ", shape_str(a));
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
  PE_CHECK(a.shape(1) > 0 && a.shape(2) > 0 && a.shape(3) > 0, op, name,
           " must have nonzero C, H and W but has shape ", shape_str(a));
}

void check_index(const char* op, const char* name, const py::array& idx, const py::array& like) {
  PE_CHECK_TYPE(idx.dtype().is(py::dtype::of<int64_t>()), op, name, " must be int64 but is ",
                dtype_name(idx));
  PE_CHECK(idx.flags() & py::array::c_style, op, name, " must be C-contiguous");
  PE_CHECK(idx.ndim() == like.ndim(), op, name, " must have shape ", shape_str(like), " but has ",
           shape_str(idx));
  for (py::ssize_t i = 0; i < like.ndim(); ++i)
    PE_CHECK(idx.shape(i) == like.shape(i), op, name, " must have shape ", shape_str(like),
             " but has ", shape_str(idx));
}

// Window parameters and output size, PyTorch's rules and checks.
Pool2d window(const char* op, int64_t N, int64_t C, int64_t H, int64_t W, Pair k, Pair s, Pair p,
              Pair d, bool ceil_mode) {
  PE_CHECK(k[0] > 0 && k[1] > 0, op, "kernel size should be greater than zero, but got kH: ", k[0],
           " kW: ", k[1]);
  PE_CHECK(s[0] > 0 && s[1] > 0, op, "stride should be greater than zero, but got dH: ", s[0],
           " dW: ", s[1]);
  PE_CHECK(d[0] > 0 && d[1] > 0, op,
           "dilation should be greater than zero, but got dilationH: ", d[0], " dilationW: ", d[1]);
  PE_CHECK(p[0] >= 0 && p[1] >= 0, op, "padding must be non-negative, but got padH: ", p[0],
           " padW: ", p[1]);
  PE_CHECK(p[0] <= k[0] / 2 && p[1] <= k[1] / 2, op,
           "pad should be smaller than or equal to half of kernel size, but got padW = ", p[1],
           ", padH = ", p[0], ", kW = ", k[1], ", kH = ", k[0]);
  Pool2d g;
  g.planes = N * C;
  g.H = H;
  g.W = W;
  g.kH = k[0];
  g.kW = k[1];
  g.sH = s[0];
  g.sW = s[1];
  g.pH = p[0];
  g.pW = p[1];
  g.dH = d[0];
  g.dW = d[1];
  g.OH = pyengine::cpu::pool_output_size(H, k[0], s[0], p[0], d[0], ceil_mode);
  g.OW = pyengine::cpu::pool_output_size(W, k[1], s[1], p[1], d[1], ceil_mode);
  PE_CHECK(g.OH >= 1 && g.OW >= 1, op, "Given input size: (", C, "x", H, "x", W,
           "). Calculated output size: (", C, "x", g.OH, "x", g.OW, "). Output size is too small");
  return g;
}

template <typename T>
py::array_t<T> empty4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return py::array_t<T>(std::vector<py::ssize_t>{n, c, h, w});
}

py::array_t<int64_t> empty_idx(int64_t n, int64_t c, int64_t h, int64_t w) {
  return py::array_t<int64_t>(std::vector<py::ssize_t>{n, c, h, w});
}

// ---- max_pool2d -------------------------------------------------------------------
template <typename T>
py::tuple max_pool2d_t(const py::array& x, const Pool2d& g, bool with_indices) {
  const int64_t N = x.shape(0), C = x.shape(1);
  auto y = empty4<T>(N, C, g.OH, g.OW);
  py::object idx_obj = py::none();
  int64_t* ip = nullptr;
  if (with_indices) {
    auto idx = empty_idx(N, C, g.OH, g.OW);
    ip = idx.mutable_data();
    idx_obj = idx;
  }
  const T* xp = static_cast<const T*>(x.data());
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::max_pool2d_forward<T>(g, xp, yp, ip);
  }
  return py::make_tuple(y, idx_obj);
}

py::tuple max_pool2d(const py::array& x, Pair k, Pair s, Pair p, Pair d, bool ceil_mode,
                     bool with_indices) {
  constexpr const char* op = "max_pool2d";
  check_nchw(op, "input", x);
  const Pool2d g =
      window(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3), k, s, p, d, ceil_mode);
  return is_f32(x) ? max_pool2d_t<float>(x, g, with_indices)
                   : max_pool2d_t<double>(x, g, with_indices);
}

// Scatter-add of gy at idx into planes of H x W (backward of max / adaptive max pooling).
template <typename T>
py::array max_pool2d_backward_t(const py::array& gy, const py::array& idx, int64_t H, int64_t W) {
  const int64_t N = gy.shape(0), C = gy.shape(1), out_hw = gy.shape(2) * gy.shape(3);
  auto gx = empty4<T>(N, C, H, W);
  const T* gp = static_cast<const T*>(gy.data());
  const int64_t* ip = static_cast<const int64_t*>(idx.data());
  T* xp = gx.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::max_pool2d_backward<T>(N * C, H * W, out_hw, gp, ip, xp);
  }
  return gx;
}

py::array max_pool2d_backward(const py::array& gy, const py::array& idx, int64_t H, int64_t W) {
  constexpr const char* op = "max_pool2d_backward";
  check_nchw(op, "grad_output", gy);
  check_index(op, "indices", idx, gy);
  PE_CHECK(H > 0 && W > 0, op, "input size must be positive but is ", H, "x", W);
  return is_f32(gy) ? max_pool2d_backward_t<float>(gy, idx, H, W)
                    : max_pool2d_backward_t<double>(gy, idx, H, W);
}

// out[n, c, i, j] = src[n, c].flat[idx[n, c, i, j]] (0 for an index outside the plane).
template <typename T>
py::array pool_gather_t(const py::array& src, const py::array& idx) {
  const int64_t N = idx.shape(0), C = idx.shape(1), oh = idx.shape(2), ow = idx.shape(3);
  auto out = empty4<T>(N, C, oh, ow);
  const T* sp = static_cast<const T*>(src.data());
  const int64_t* ip = static_cast<const int64_t*>(idx.data());
  T* op = out.mutable_data();
  const int64_t src_hw = src.shape(2) * src.shape(3);
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::pool_gather<T>(N * C, src_hw, oh * ow, sp, ip, op);
  }
  return out;
}

py::array pool_gather(const py::array& src, const py::array& idx) {
  constexpr const char* op = "pool_gather";
  check_nchw(op, "src", src);
  PE_CHECK_TYPE(idx.dtype().is(py::dtype::of<int64_t>()), op, "indices must be int64 but is ",
                dtype_name(idx));
  PE_CHECK(idx.ndim() == 4 && (idx.flags() & py::array::c_style), op,
           "indices must be a C-contiguous 4-D array");
  PE_CHECK(idx.shape(0) == src.shape(0) && idx.shape(1) == src.shape(1), op, "indices ",
           shape_str(idx), " and src ", shape_str(src), " differ in N or C");
  return is_f32(src) ? pool_gather_t<float>(src, idx) : pool_gather_t<double>(src, idx);
}

// ---- avg_pool2d -------------------------------------------------------------------
template <typename T>
py::array avg_t(const py::array& in, const Pool2d& g, bool cip, int64_t div, bool backward) {
  const int64_t N = in.shape(0), C = in.shape(1);
  auto out = backward ? empty4<T>(N, C, g.H, g.W) : empty4<T>(N, C, g.OH, g.OW);
  const T* ip = static_cast<const T*>(in.data());
  T* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (backward)
      pyengine::cpu::avg_pool2d_backward<T>(g, cip, div, ip, op);
    else
      pyengine::cpu::avg_pool2d_forward<T>(g, cip, div, ip, op);
  }
  return out;
}

py::array avg_pool2d(const py::array& x, Pair k, Pair s, Pair p, bool ceil_mode, bool cip,
                     int64_t divisor_override) {
  constexpr const char* op = "avg_pool2d";
  check_nchw(op, "input", x);
  const Pool2d g =
      window(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3), k, s, p, {1, 1}, ceil_mode);
  return is_f32(x) ? avg_t<float>(x, g, cip, divisor_override, false)
                   : avg_t<double>(x, g, cip, divisor_override, false);
}

py::array avg_pool2d_backward(const py::array& gy, int64_t H, int64_t W, Pair k, Pair s, Pair p,
                              bool ceil_mode, bool cip, int64_t divisor_override) {
  constexpr const char* op = "avg_pool2d_backward";
  check_nchw(op, "grad_output", gy);
  PE_CHECK(H > 0 && W > 0, op, "input size must be positive but is ", H, "x", W);
  const Pool2d g = window(op, gy.shape(0), gy.shape(1), H, W, k, s, p, {1, 1}, ceil_mode);
  PE_CHECK(gy.shape(2) == g.OH && gy.shape(3) == g.OW, op, "grad_output has shape ", shape_str(gy),
           " but the pooling gives ", g.OH, "x", g.OW);
  return is_f32(gy) ? avg_t<float>(gy, g, cip, divisor_override, true)
                    : avg_t<double>(gy, g, cip, divisor_override, true);
}

// ---- adaptive ---------------------------------------------------------------------
void check_out_size(const char* op, int64_t OH, int64_t OW) {
  PE_CHECK(OH > 0 && OW > 0, op, "output_size must be positive but is (", OH, ", ", OW, ")");
}

template <typename T>
py::array adaptive_avg_t(const py::array& in, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         bool backward) {
  const int64_t N = in.shape(0), C = in.shape(1);
  auto out = backward ? empty4<T>(N, C, H, W) : empty4<T>(N, C, OH, OW);
  const T* ip = static_cast<const T*>(in.data());
  T* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (backward)
      pyengine::cpu::adaptive_avg_pool2d_backward<T>(N * C, H, W, OH, OW, ip, op);
    else
      pyengine::cpu::adaptive_avg_pool2d_forward<T>(N * C, H, W, OH, OW, ip, op);
  }
  return out;
}

py::array adaptive_avg_pool2d(const py::array& x, int64_t OH, int64_t OW) {
  constexpr const char* op = "adaptive_avg_pool2d";
  check_nchw(op, "input", x);
  check_out_size(op, OH, OW);
  return is_f32(x) ? adaptive_avg_t<float>(x, x.shape(2), x.shape(3), OH, OW, false)
                   : adaptive_avg_t<double>(x, x.shape(2), x.shape(3), OH, OW, false);
}

py::array adaptive_avg_pool2d_backward(const py::array& gy, int64_t H, int64_t W) {
  constexpr const char* op = "adaptive_avg_pool2d_backward";
  check_nchw(op, "grad_output", gy);
  PE_CHECK(H > 0 && W > 0, op, "input size must be positive but is ", H, "x", W);
  return is_f32(gy) ? adaptive_avg_t<float>(gy, H, W, gy.shape(2), gy.shape(3), true)
                    : adaptive_avg_t<double>(gy, H, W, gy.shape(2), gy.shape(3), true);
}

template <typename T>
py::tuple adaptive_max_t(const py::array& x, int64_t OH, int64_t OW, bool with_indices) {
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  auto y = empty4<T>(N, C, OH, OW);
  py::object idx_obj = py::none();
  int64_t* ip = nullptr;
  if (with_indices) {
    auto idx = empty_idx(N, C, OH, OW);
    ip = idx.mutable_data();
    idx_obj = idx;
  }
  const T* xp = static_cast<const T*>(x.data());
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::adaptive_max_pool2d_forward<T>(N * C, H, W, OH, OW, xp, yp, ip);
  }
  return py::make_tuple(y, idx_obj);
}

py::tuple adaptive_max_pool2d(const py::array& x, int64_t OH, int64_t OW, bool with_indices) {
  constexpr const char* op = "adaptive_max_pool2d";
  check_nchw(op, "input", x);
  check_out_size(op, OH, OW);
  return is_f32(x) ? adaptive_max_t<float>(x, OH, OW, with_indices)
                   : adaptive_max_t<double>(x, OH, OW, with_indices);
}

// ---- max_unpool2d -----------------------------------------------------------------
template <typename T>
py::array unpool_t(const py::array& x, const py::array& idx, int64_t OH, int64_t OW) {
  const int64_t N = x.shape(0), C = x.shape(1), in_hw = x.shape(2) * x.shape(3);
  const int64_t* ip = static_cast<const int64_t*>(idx.data());
  int64_t bad;
  {
    py::gil_scoped_release nogil;
    bad = pyengine::cpu::max_unpool2d_find_bad_index(N * C, in_hw, OH * OW, ip);
  }
  PE_CHECK(bad < 0, "max_unpool2d", "Found an invalid max index: ", bad < 0 ? 0 : ip[bad],
           " (output volumes are of size ", OH, "x", OW, ")");
  auto y = empty4<T>(N, C, OH, OW);
  const T* xp = static_cast<const T*>(x.data());
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::max_unpool2d_forward<T>(N * C, in_hw, OH * OW, xp, ip, yp);
  }
  return y;
}

py::array max_unpool2d(const py::array& x, const py::array& idx, int64_t OH, int64_t OW) {
  constexpr const char* op = "max_unpool2d";
  check_nchw(op, "input", x);
  check_index(op, "indices", idx, x);
  check_out_size(op, OH, OW);
  return is_f32(x) ? unpool_t<float>(x, idx, OH, OW) : unpool_t<double>(x, idx, OH, OW);
}

// ---- nearest upsampling -------------------------------------------------------------
template <typename T>
py::array upsample_t(const py::array& in, int64_t fH, int64_t fW, bool backward) {
  const int64_t N = in.shape(0), C = in.shape(1);
  const int64_t H = backward ? in.shape(2) / fH : in.shape(2);
  const int64_t W = backward ? in.shape(3) / fW : in.shape(3);
  auto out = backward ? empty4<T>(N, C, H, W) : empty4<T>(N, C, H * fH, W * fW);
  const T* ip = static_cast<const T*>(in.data());
  T* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (backward)
      pyengine::cpu::upsample_nearest2d_backward<T>(N * C, H, W, fH, fW, ip, op);
    else
      pyengine::cpu::upsample_nearest2d_forward<T>(N * C, H, W, fH, fW, ip, op);
  }
  return out;
}

py::array upsample_nearest2d(const py::array& x, int64_t fH, int64_t fW) {
  constexpr const char* op = "upsample_nearest2d";
  check_nchw(op, "input", x);
  PE_CHECK(fH > 0 && fW > 0, op, "scale factors must be positive integers but are ", fH, ", ", fW);
  return is_f32(x) ? upsample_t<float>(x, fH, fW, false) : upsample_t<double>(x, fH, fW, false);
}

py::array upsample_nearest2d_backward(const py::array& gy, int64_t fH, int64_t fW) {
  constexpr const char* op = "upsample_nearest2d_backward";
  check_nchw(op, "grad_output", gy);
  PE_CHECK(fH > 0 && fW > 0, op, "scale factors must be positive integers but are ", fH, ", ", fW);
  PE_CHECK(gy.shape(2) % fH == 0 && gy.shape(3) % fW == 0, op, "grad_output ", shape_str(gy),
           " is not a multiple of the factors ", fH, ", ", fW);
  return is_f32(gy) ? upsample_t<float>(gy, fH, fW, true) : upsample_t<double>(gy, fH, fW, true);
}

}  // namespace

void pyengine::bind::register_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("input"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"), py::arg("with_indices"),
        "(y, indices or None) of 2-D max pooling on (N, C, H, W); indices are h*W + w.");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("grad_output"), py::arg("indices"),
        py::arg("H"), py::arg("W"),
        "Scatter-add of grad_output at indices into (N, C, H, W) zeros (max pooling backward).");
  m.def("pool_gather", &pool_gather, py::arg("src"), py::arg("indices"),
        "out[n, c, i, j] = src[n, c].flat[indices[n, c, i, j]] (0 outside the plane).");
  m.def("avg_pool2d", &avg_pool2d, py::arg("input"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        py::arg("divisor_override"), "2-D average pooling; divisor_override 0 means none.");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_output"), py::arg("H"),
        py::arg("W"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        "Gradient of avg_pool2d with respect to its (N, C, H, W) input.");
  m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, py::arg("input"), py::arg("OH"), py::arg("OW"),
        "Adaptive average pooling to (OH, OW).");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("grad_output"),
        py::arg("H"), py::arg("W"), "Gradient of adaptive_avg_pool2d for an (H, W) input.");
  m.def("adaptive_max_pool2d", &adaptive_max_pool2d, py::arg("input"), py::arg("OH"), py::arg("OW"),
        py::arg("with_indices"),
        "(y, indices or None) of adaptive max pooling; the backward is max_pool2d_backward.");
  m.def("max_unpool2d", &max_unpool2d, py::arg("input"), py::arg("indices"), py::arg("OH"),
        py::arg("OW"),
        "Scatter input at indices into (N, C, OH, OW) zeros; the backward is pool_gather.");
  m.def("upsample_nearest2d", &upsample_nearest2d, py::arg("input"), py::arg("fH"), py::arg("fW"),
        "Nearest-neighbour upsampling by integer factors.");
  m.def("upsample_nearest2d_backward", &upsample_nearest2d_backward, py::arg("grad_output"),
        py::arg("fH"), py::arg("fW"), "Gradient of upsample_nearest2d (block sums).");
}
