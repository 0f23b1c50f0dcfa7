// _cuda bindings of the generalized convolution (cuda/conv.h): device pointers, shapes, the
// geometry, a dtype name and the caller's stream. Python (pyengine/backend/cuda.py) allocates
// the outputs with CuPy; every argument is checked here before anything is enqueued.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <climits>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "conv.h"
#include "core/error.h"

namespace py = pybind11;

namespace {

using pyengine::cuda::ConvParams;
using Pair = std::array<int64_t, 2>;
using Shape = std::array<int64_t, 4>;

ConvParams make_params(const char* op, const Shape& xs, const Shape& ws, Pair stride, Pair pad_lo,
                       Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip,
                       bool wtrans) {
  PE_CHECK(groups >= 1, op, "groups must be >= 1 but is ", groups);
  for (int d = 0; d < 2; ++d) {
    PE_CHECK(stride[d] >= 1, op, "stride must be >= 1 but is ", stride[d]);
    PE_CHECK(dilation[d] >= 1, op, "dilation must be >= 1 but is ", dilation[d]);
    PE_CHECK(input_dilation[d] >= 1, op, "input dilation must be >= 1 but is ", input_dilation[d]);
  }
  for (int i = 0; i < 4; ++i) {
    PE_CHECK(xs[i] >= 0 && xs[i] <= INT_MAX && ws[i] >= 0 && ws[i] <= INT_MAX, op,
             "dimensions must be in [0, 2^31) but the input is (", xs[0], ", ", xs[1], ", ", xs[2],
             ", ", xs[3], ") and the weight (", ws[0], ", ", ws[1], ", ", ws[2], ", ", ws[3], ")");
  }
  ConvParams p;
  p.N = xs[0];
  p.C = xs[1];
  p.H = xs[2];
  p.W = xs[3];
  p.KH = ws[2];
  p.KW = ws[3];
  p.groups = groups;
  PE_CHECK(p.H >= 1 && p.W >= 1, op, "input spatial size must be >= 1 but is (", p.H, ", ", p.W,
           ")");
  PE_CHECK(p.KH >= 1 && p.KW >= 1, op, "kernel size must be >= 1 but is (", p.KH, ", ", p.KW, ")");
  PE_CHECK(p.C % groups == 0, op, "input channels (", p.C, ") must be divisible by groups (",
           groups, ")");
  if (wtrans) {
    PE_CHECK(ws[0] == p.C, op, "weight expects ", ws[0], " input channels but the input has ", p.C);
    p.O = ws[1] * groups;
  } else {
    PE_CHECK(ws[1] * groups == p.C, op, "weight with groups=", groups, " expects ", ws[1] * groups,
             " input channels but the input has ", p.C);
    PE_CHECK(ws[0] % groups == 0, op, "output channels (", ws[0], ") must be divisible by groups (",
             groups, ")");
    p.O = ws[0];
  }
  for (int d = 0; d < 2; ++d) {
    PE_CHECK(pad_lo[d] > INT_MIN / 4 && pad_lo[d] < INT_MAX / 4 && pad_hi[d] > INT_MIN / 4 &&
                 pad_hi[d] < INT_MAX / 4 && stride[d] < INT_MAX / 4 && dilation[d] < INT_MAX / 4 &&
                 input_dilation[d] < INT_MAX / 4,
             op, "geometry values out of range");
    p.stride[d] = stride[d];
    p.pad_lo[d] = pad_lo[d];
    p.pad_hi[d] = pad_hi[d];
    p.kdil[d] = dilation[d];
    p.idil[d] = input_dilation[d];
  }
  p.flip = flip;
  p.wtrans = wtrans;
  PE_CHECK(p.OH() >= 1 && p.OW() >= 1, op, "kernel (", p.KH, ", ", p.KW, ") with dilation (",
           p.kdil[0], ", ", p.kdil[1], ") is larger than the padded input");
  // Coordinates inside the kernels are int32: the dilated, padded extent must fit.
  PE_CHECK((p.H - 1) * p.idil[0] + p.pad_lo[0] + p.pad_hi[0] < INT_MAX / 2 &&
               (p.W - 1) * p.idil[1] + p.pad_lo[1] + p.pad_hi[1] < INT_MAX / 2 &&
               p.OH() * p.OW() < INT_MAX && (p.C / groups) * p.KH * p.KW < INT_MAX,
           op, "the convolution is too large for the CUDA kernels (int32 coordinates)");
  return p;
}

void check_dtype(const char* op, const std::string& dtype) {
  PE_CHECK_TYPE(dtype == "float32" || dtype == "float64", op,
                "dtype must be 'float32' or 'float64' but is '", dtype, "'");
}

void check_ptr(const char* op, const char* name, std::uintptr_t p) {
  PE_CHECK(p != 0, op, name, " is a null pointer");
}

}  // namespace

namespace pyengine::cuda {

void register_conv(py::module_& m) {
  m.def(
      "conv_general_output_shape",
      [](Shape xs, Shape ws, Pair stride, Pair pad_lo, Pair pad_hi, Pair dilation,
         Pair input_dilation, int64_t groups, bool flip, bool wtrans, const std::string& op) {
        const ConvParams p = make_params(op.c_str(), xs, ws, stride, pad_lo, pad_hi, dilation,
                                         input_dilation, groups, flip, wtrans);
        return py::make_tuple(p.N, p.O, p.OH(), p.OW());
      },
      py::arg("input_shape"), py::arg("weight_shape"), py::arg("stride"), py::arg("pad_lo"),
      py::arg("pad_hi"), py::arg("dilation"), py::arg("input_dilation"), py::arg("groups"),
      py::arg("flip"), py::arg("wtrans"), py::arg("op") = "conv_general",
      "Checks a conv_general geometry and returns the output shape (N, O, OH, OW).");

  m.def(
      "conv_general",
      [](std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias, std::uintptr_t y, Shape xs,
         Shape ws, Pair stride, Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation,
         int64_t groups, bool flip, bool wtrans, const std::string& dtype, std::uintptr_t stream,
         const std::string& op) {
        const char* o = op.c_str();
        check_dtype(o, dtype);
        const ConvParams p = make_params(o, xs, ws, stride, pad_lo, pad_hi, dilation,
                                         input_dilation, groups, flip, wtrans);
        if (p.N > 0 && p.O > 0) {
          check_ptr(o, "input", x);
          check_ptr(o, "weight", w);
          check_ptr(o, "output", y);
        }
        py::gil_scoped_release nogil;
        const cudaStream_t s = stream_from_int(stream);
        if (dtype == "float32")
          conv_forward<float>(p, reinterpret_cast<const float*>(x),
                              reinterpret_cast<const float*>(w),
                              reinterpret_cast<const float*>(bias), reinterpret_cast<float*>(y), s);
        else
          conv_forward<double>(
              p, reinterpret_cast<const double*>(x), reinterpret_cast<const double*>(w),
              reinterpret_cast<const double*>(bias), reinterpret_cast<double*>(y), s);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("output"),
      py::arg("input_shape"), py::arg("weight_shape"), py::arg("stride"), py::arg("pad_lo"),
      py::arg("pad_hi"), py::arg("dilation"), py::arg("input_dilation"), py::arg("groups"),
      py::arg("flip"), py::arg("wtrans"), py::arg("dtype"), py::arg("stream"),
      py::arg("op") = "conv_general",
      "output (N, O, OH, OW) = conv_general(input, weight) + bias (bias 0: none); device\n"
      "pointers to C-contiguous arrays, enqueued on `stream`.");

  m.def(
      "conv_general_grad_input",
      [](std::uintptr_t gy, std::uintptr_t w, std::uintptr_t gx, Shape xs, Shape ws, Pair stride,
         Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip,
         bool wtrans, const std::string& dtype, std::uintptr_t stream, const std::string& op) {
        const char* o = op.c_str();
        check_dtype(o, dtype);
        const ConvParams p = make_params(o, xs, ws, stride, pad_lo, pad_hi, dilation,
                                         input_dilation, groups, flip, wtrans);
        if (p.N > 0 && p.C > 0) {
          check_ptr(o, "grad_input", gx);
          if (p.O > 0) {
            check_ptr(o, "grad_output", gy);
            check_ptr(o, "weight", w);
          }
        }
        py::gil_scoped_release nogil;
        const cudaStream_t s = stream_from_int(stream);
        if (dtype == "float32")
          conv_grad_input<float>(p, reinterpret_cast<const float*>(gy),
                                 reinterpret_cast<const float*>(w), reinterpret_cast<float*>(gx),
                                 s);
        else
          conv_grad_input<double>(p, reinterpret_cast<const double*>(gy),
                                  reinterpret_cast<const double*>(w), reinterpret_cast<double*>(gx),
                                  s);
      },
      py::arg("grad_output"), py::arg("weight"), py::arg("grad_input"), py::arg("input_shape"),
      py::arg("weight_shape"), py::arg("stride"), py::arg("pad_lo"), py::arg("pad_hi"),
      py::arg("dilation"), py::arg("input_dilation"), py::arg("groups"), py::arg("flip"),
      py::arg("wtrans"), py::arg("dtype"), py::arg("stream"), py::arg("op") = "conv_general",
      "grad_input (input_shape) = d<grad_output, conv_general(input, weight)>/d input.");

  m.def(
      "conv_general_grad_weight",
      [](std::uintptr_t x, std::uintptr_t gy, std::uintptr_t gw, Shape xs, Shape ws, Pair stride,
         Pair pad_lo, Pair pad_hi, Pair dilation, Pair input_dilation, int64_t groups, bool flip,
         bool wtrans, const std::string& dtype, std::uintptr_t stream, const std::string& op) {
        const char* o = op.c_str();
        check_dtype(o, dtype);
        const ConvParams p = make_params(o, xs, ws, stride, pad_lo, pad_hi, dilation,
                                         input_dilation, groups, flip, wtrans);
        if (ws[0] * ws[1] * ws[2] * ws[3] > 0) {
          check_ptr(o, "grad_weight", gw);
          if (p.N > 0) {
            check_ptr(o, "input", x);
            check_ptr(o, "grad_output", gy);
          }
        }
        py::gil_scoped_release nogil;
        const cudaStream_t s = stream_from_int(stream);
        if (dtype == "float32")
          conv_grad_weight<float>(p, reinterpret_cast<const float*>(x),
                                  reinterpret_cast<const float*>(gy), reinterpret_cast<float*>(gw),
                                  s);
        else
          conv_grad_weight<double>(p, reinterpret_cast<const double*>(x),
                                   reinterpret_cast<const double*>(gy),
                                   reinterpret_cast<double*>(gw), s);
      },
      py::arg("input"), py::arg("grad_output"), py::arg("grad_weight"), py::arg("input_shape"),
      py::arg("weight_shape"), py::arg("stride"), py::arg("pad_lo"), py::arg("pad_hi"),
      py::arg("dilation"), py::arg("input_dilation"), py::arg("groups"), py::arg("flip"),
      py::arg("wtrans"), py::arg("dtype"), py::arg("stream"), py::arg("op") = "conv_general",
      "grad_weight (weight_shape) = d<grad_output, conv_general(input, weight)>/d weight.");

  m.def(
      "conv_general_grad_bias",
      [](std::uintptr_t gy, std::uintptr_t gb, Shape gys, const std::string& dtype,
         std::uintptr_t stream, const std::string& op) {
        const char* o = op.c_str();
        check_dtype(o, dtype);
        for (int i = 0; i < 4; ++i)
          PE_CHECK(gys[i] >= 0 && gys[i] <= INT_MAX, o,
                   "grad_output dimensions must be in [0, 2^31)");
        ConvParams p;  // a 1x1 stride-1 conv: OH = H, OW = W
        p.N = gys[0];
        p.O = gys[1];
        p.C = gys[1];
        p.H = gys[2];
        p.W = gys[3];
        PE_CHECK(p.H >= 1 && p.W >= 1, o, "grad_output must have spatial size >= 1");
        if (p.O > 0) check_ptr(o, "grad_bias", gb);
        if (p.O > 0 && p.N > 0) check_ptr(o, "grad_output", gy);
        py::gil_scoped_release nogil;
        const cudaStream_t s = stream_from_int(stream);
        if (dtype == "float32")
          conv_grad_bias<float>(p, reinterpret_cast<const float*>(gy), reinterpret_cast<float*>(gb),
                                s);
        else
          conv_grad_bias<double>(p, reinterpret_cast<const double*>(gy),
                                 reinterpret_cast<double*>(gb), s);
      },
      py::arg("grad_output"), py::arg("grad_bias"), py::arg("grad_output_shape"), py::arg("dtype"),
      py::arg("stream"), py::arg("op") = "conv_general",
      "grad_bias (O) = grad_output summed over N, H, W.");
}

}  // namespace pyengine::cuda
