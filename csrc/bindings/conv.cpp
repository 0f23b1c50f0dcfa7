// Bindings of the generalized convolution (cpu/conv.h): conv_general and its three
// gradients. Python (pyengine/ops/conv.py) maps conv2d / conv_transpose2d onto these; `op`
// names the public op in error messages.
#include "cpu/conv.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;
using pyengine::cpu::ConvParams;

namespace {

using Pair = std::array<int64_t, 2>;

struct Geometry {
  Pair stride, pad_lo, pad_hi, kdil, idil;
  int64_t groups;
  bool flip, wtrans;
};

void check_array(const char* op, const char* name, const py::array& a, int ndim) {
  PE_CHECK(a.ndim() == ndim, op, name, " must have ", ndim, " dimensions but has ", a.ndim());
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
}

// Parameters for input shape (N, C, H, W) and a weight of shape wshape; checks everything
// the kernel relies on. Pads may be negative (crop): the adjoint of a conv may need it.
ConvParams make_params(const char* op, const std::array<int64_t, 4>& xs,
                       const std::array<int64_t, 4>& ws, const Geometry& g) {
  PE_CHECK(g.groups >= 1, op, "groups must be >= 1 but is ", g.groups);
  for (int d = 0; d < 2; ++d) {
    PE_CHECK(g.stride[d] >= 1, op, "stride must be >= 1 but is ", g.stride[d]);
    PE_CHECK(g.kdil[d] >= 1, op, "dilation must be >= 1 but is ", g.kdil[d]);
    PE_CHECK(g.idil[d] >= 1, op, "input dilation must be >= 1 but is ", g.idil[d]);
  }
  ConvParams p;
  p.N = xs[0];
  p.C = xs[1];
  p.H = xs[2];
  p.W = xs[3];
  PE_CHECK(p.H >= 1 && p.W >= 1, op, "input spatial size must be >= 1 but is (", p.H, ", ", p.W,
           ")");
  PE_CHECK(p.C % g.groups == 0, op, "input channels (", p.C, ") must be divisible by groups (",
           g.groups, ")");
  p.groups = g.groups;
  p.KH = ws[2];
  p.KW = ws[3];
  PE_CHECK(p.KH >= 1 && p.KW >= 1, op, "kernel size must be >= 1 but is (", p.KH, ", ", p.KW, ")");
  if (g.wtrans) {
    PE_CHECK(ws[0] == p.C, op, "weight of shape (", ws[0], ", ", ws[1], ", ", ws[2], ", ", ws[3],
             ") expects ", ws[0], " input channels but the input has ", p.C);
    p.O = ws[1] * g.groups;
  } else {
    PE_CHECK(ws[1] * g.groups == p.C, op, "weight of shape (", ws[0], ", ", ws[1], ", ", ws[2],
             ", ", ws[3], ") with groups=", g.groups, " expects ", ws[1] * g.groups,
             " input channels but the input has ", p.C);
    PE_CHECK(ws[0] % g.groups == 0, op, "output channels (", ws[0],
             ") must be divisible by groups (", g.groups, ")");
    p.O = ws[0];
  }
  for (int d = 0; d < 2; ++d) {
    p.stride[d] = g.stride[d];
    p.pad_lo[d] = g.pad_lo[d];
    p.pad_hi[d] = g.pad_hi[d];
    p.kdil[d] = g.kdil[d];
    p.idil[d] = g.idil[d];
  }
  p.flip = g.flip;
  p.wtrans = g.wtrans;
  PE_CHECK(p.OH() >= 1 && p.OW() >= 1, op, "kernel (", p.KH, ", ", p.KW, ") with dilation (",
           p.kdil[0], ", ", p.kdil[1], ") is larger than the padded input (",
           (p.H - 1) * p.idil[0] + 1 + p.pad_lo[0] + p.pad_hi[0], ", ",
           (p.W - 1) * p.idil[1] + 1 + p.pad_lo[1] + p.pad_hi[1], ")");
  return p;
}

std::array<int64_t, 4> shape4(const py::array& a) {
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

template <typename T>
py::array_t<T> new_array(const std::array<int64_t, 4>& s) {
  return py::array_t<T>(std::vector<py::ssize_t>{s[0], s[1], s[2], s[3]});
}

py::array forward(const std::string& op_name, const py::array& x, const py::array& w,
                  const py::object& bias, const Geometry& g) {
  const char* op = op_name.c_str();
  check_array(op, "input", x, 4);
  check_array(op, "weight", w, 4);
  check_float(op, "input", x);
  check_same_dtype(op, "weight", w, x);
  const ConvParams p = make_params(op, shape4(x), shape4(w), g);
  const void* b = nullptr;
  if (!bias.is_none()) {
    auto ba = bias.cast<py::array>();
    check_array(op, "bias", ba, 1);
    check_same_dtype(op, "bias", ba, x);
    PE_CHECK(ba.shape(0) == p.O, op, "bias must have ", p.O, " elements but has ", ba.shape(0));
    b = ba.data();
  }
  const std::array<int64_t, 4> ys{p.N, p.O, p.OH(), p.OW()};
  if (is_f32(x)) {
    auto y = new_array<float>(ys);
    const auto *xp = static_cast<const float*>(x.data()), *wp = static_cast<const float*>(w.data());
    float* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    pyengine::cpu::conv_forward<float>(p, xp, wp, static_cast<const float*>(b), yp);
    return std::move(y);
  }
  auto y = new_array<double>(ys);
  const auto *xp = static_cast<const double*>(x.data()), *wp = static_cast<const double*>(w.data());
  double* yp = y.mutable_data();
  py::gil_scoped_release nogil;
  pyengine::cpu::conv_forward<double>(p, xp, wp, static_cast<const double*>(b), yp);
  return std::move(y);
}

void check_grad_output(const char* op, const ConvParams& p, const py::array& gy,
                       const py::array& ref) {
  check_array(op, "grad_output", gy, 4);
  check_same_dtype(op, "grad_output", gy, ref);
  const std::array<int64_t, 4> want{p.N, p.O, p.OH(), p.OW()};
  PE_CHECK(shape4(gy) == want, op, "grad_output must have shape (", want[0], ", ", want[1], ", ",
           want[2], ", ", want[3], ") but has (", gy.shape(0), ", ", gy.shape(1), ", ", gy.shape(2),
           ", ", gy.shape(3), ")");
}

template <typename T>
py::array grad_input_t(const ConvParams& p, const py::array& gy, const py::array& w) {
  auto gx = new_array<T>({p.N, p.C, p.H, p.W});
  const T *gp = static_cast<const T*>(gy.data()), *wp = static_cast<const T*>(w.data());
  T* out = gx.mutable_data();
  py::gil_scoped_release nogil;
  pyengine::cpu::conv_grad_input<T>(p, gp, wp, out);
  return std::move(gx);
}

py::array grad_input(const std::string& op_name, const py::array& gy, const py::array& w,
                     const std::array<int64_t, 4>& input_shape, const Geometry& g) {
  const char* op = op_name.c_str();
  check_array(op, "weight", w, 4);
  check_float(op, "weight", w);
  for (int i = 0; i < 4; ++i) PE_CHECK(input_shape[i] >= 0, op, "input_shape must be non-negative");
  const ConvParams p = make_params(op, input_shape, shape4(w), g);
  check_grad_output(op, p, gy, w);
  return is_f32(w) ? grad_input_t<float>(p, gy, w) : grad_input_t<double>(p, gy, w);
}

template <typename T>
py::array grad_weight_t(const ConvParams& p, const py::array& x, const py::array& gy,
                        const std::array<int64_t, 4>& ws) {
  auto gw = new_array<T>(ws);
  const T *xp = static_cast<const T*>(x.data()), *gp = static_cast<const T*>(gy.data());
  T* out = gw.mutable_data();
  py::gil_scoped_release nogil;
  pyengine::cpu::conv_grad_weight<T>(p, xp, gp, out);
  return std::move(gw);
}

py::array grad_weight(const std::string& op_name, const py::array& x, const py::array& gy,
                      const std::array<int64_t, 4>& weight_shape, const Geometry& g) {
  const char* op = op_name.c_str();
  check_array(op, "input", x, 4);
  check_float(op, "input", x);
  for (int i = 0; i < 4; ++i)
    PE_CHECK(weight_shape[i] >= 0, op, "weight_shape must be non-negative");
  const ConvParams p = make_params(op, shape4(x), weight_shape, g);
  check_grad_output(op, p, gy, x);
  return is_f32(x) ? grad_weight_t<float>(p, x, gy, weight_shape)
                   : grad_weight_t<double>(p, x, gy, weight_shape);
}

template <typename T>
py::array grad_bias_t(const py::array& gy) {
  ConvParams p;
  p.N = gy.shape(0);
  p.O = gy.shape(1);
  p.H = gy.shape(2);  // a 1x1 stride-1 conv: OH = H, OW = W
  p.W = gy.shape(3);
  py::array_t<T> gb(std::vector<py::ssize_t>{p.O});
  const T* gp = static_cast<const T*>(gy.data());
  T* out = gb.mutable_data();
  py::gil_scoped_release nogil;
  pyengine::cpu::conv_grad_bias<T>(p, gp, out);
  return std::move(gb);
}

py::array grad_bias(const std::string& op_name, const py::array& gy) {
  const char* op = op_name.c_str();
  check_array(op, "grad_output", gy, 4);
  check_float(op, "grad_output", gy);
  PE_CHECK(gy.shape(2) >= 1 && gy.shape(3) >= 1, op, "grad_output must have spatial size >= 1");
  return is_f32(gy) ? grad_bias_t<float>(gy) : grad_bias_t<double>(gy);
}

}  // namespace

void pyengine::bind::register_conv(py::module_& m) {
  auto geometry = [](Pair stride, Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation,
                     int64_t groups, bool flip, bool wtrans) {
    return Geometry{stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip, wtrans};
  };
  m.def(
      "conv_general",
      [=](const py::array& x, const py::array& w, const py::object& bias, Pair stride, Pair pad_lo,
          Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip, bool wtrans,
          const std::string& op) {
        return forward(
            op, x, w, bias,
            geometry(stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip, wtrans));
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("pad_lo"),
      py::arg("pad_hi"), py::arg("dilation"), py::arg("input_dilation"), py::arg("groups"),
      py::arg("flip"), py::arg("wtrans"), py::arg("op") = "conv_general",
      "Generalized 2-D convolution (NCHW); returns a new output array. See csrc/cpu/conv.h.");
  m.def(
      "conv_general_grad_input",
      [=](const py::array& gy, const py::array& w, std::array<int64_t, 4> input_shape, Pair stride,
          Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip,
          bool wtrans, const std::string& op) {
        return grad_input(
            op, gy, w, input_shape,
            geometry(stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip, wtrans));
      },
      py::arg("grad_output"), py::arg("weight"), py::arg("input_shape"), py::arg("stride"),
      py::arg("pad_lo"), py::arg("pad_hi"), py::arg("dilation"), py::arg("input_dilation"),
      py::arg("groups"), py::arg("flip"), py::arg("wtrans"), py::arg("op") = "conv_general",
      "Gradient of conv_general with respect to its input (a new array).");
  m.def(
      "conv_general_grad_weight",
      [=](const py::array& x, const py::array& gy, std::array<int64_t, 4> weight_shape, Pair stride,
          Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip,
          bool wtrans, const std::string& op) {
        return grad_weight(
            op, x, gy, weight_shape,
            geometry(stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip, wtrans));
      },
      py::arg("input"), py::arg("grad_output"), py::arg("weight_shape"), py::arg("stride"),
      py::arg("pad_lo"), py::arg("pad_hi"), py::arg("dilation"), py::arg("input_dilation"),
      py::arg("groups"), py::arg("flip"), py::arg("wtrans"), py::arg("op") = "conv_general",
      "Gradient of conv_general with respect to its weight (a new array, weight's layout).");
  m.def(
      "conv_general_grad_bias",
      [](const py::array& gy, const std::string& op) { return grad_bias(op, gy); },
      py::arg("grad_output"), py::arg("op") = "conv_general",
      "Gradient of conv_general with respect to its bias: grad_output summed over N, H, W.");
}
