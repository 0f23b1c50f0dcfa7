// Bindings of the activation helpers (cpu/activation.h): erf, and GELU (exact and tanh) and
// SiLU with their backwards, on C-contiguous float arrays.
#include "cpu/activation.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <vector>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;

namespace {

// The C-contiguous float array x of op, and a new array of its shape and dtype.
py::array like(const char* op, const py::array& x) {
  check_float(op, "input", x);
  PE_CHECK(x.flags() & py::array::c_style, op, "input must be C-contiguous");
  return py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
}

// y = f(x) elementwise, the float32 or float64 instantiation of f.
template <typename F>
py::array unary(const char* op, const py::array& x, F&& f) {
  py::array y = like(op, x);
  const int64_t n = x.size();
  if (is_f32(x)) {
    const float* xp = static_cast<const float*>(x.data());
    float* yp = static_cast<float*>(y.mutable_data());
    py::gil_scoped_release nogil;
    f(n, xp, yp);
  } else {
    const double* xp = static_cast<const double*>(x.data());
    double* yp = static_cast<double*>(y.mutable_data());
    py::gil_scoped_release nogil;
    f(n, xp, yp);
  }
  return y;
}

// dx = f(x, g) elementwise, g of x's dtype and shape.
template <typename F>
py::array unary_backward(const char* op, const py::array& x, const py::array& g, F&& f) {
  py::array dx = like(op, x);
  check_float(op, "grad", g);
  PE_CHECK(g.flags() & py::array::c_style, op, "grad must be C-contiguous");
  PE_CHECK(g.dtype().is(x.dtype()), op, "grad and input dtypes differ");
  PE_CHECK(g.ndim() == x.ndim() && std::equal(x.shape(), x.shape() + x.ndim(), g.shape()), op,
           "grad and input shapes differ");
  const int64_t n = x.size();
  if (is_f32(x)) {
    const float* xp = static_cast<const float*>(x.data());
    const float* gp = static_cast<const float*>(g.data());
    float* dp = static_cast<float*>(dx.mutable_data());
    py::gil_scoped_release nogil;
    f(n, xp, gp, dp);
  } else {
    const double* xp = static_cast<const double*>(x.data());
    const double* gp = static_cast<const double*>(g.data());
    double* dp = static_cast<double*>(dx.mutable_data());
    py::gil_scoped_release nogil;
    f(n, xp, gp, dp);
  }
  return dx;
}

// Generic lambdas: each call instantiates the float and the double kernel.
#define PE_UNARY(fn) [](int64_t n, const auto* x, auto* y) { pyengine::cpu::fn(n, x, y); }
#define PE_UNARY_BACKWARD(fn) \
  [](int64_t n, const auto* x, const auto* g, auto* dx) { pyengine::cpu::fn(n, x, g, dx); }

}  // namespace

void pyengine::bind::register_activation(py::module_& m) {
  m.def(
      "erf", [](const py::array& x) { return unary("erf", x, PE_UNARY(erf)); }, py::arg("input"),
      "Elementwise erf of a C-contiguous float array.");
  m.def(
      "gelu", [](const py::array& x) { return unary("gelu", x, PE_UNARY(gelu)); }, py::arg("input"),
      "Exact GELU, x * Phi(x), elementwise.");
  m.def(
      "gelu_backward",
      [](const py::array& x, const py::array& g) {
        return unary_backward("gelu", x, g, PE_UNARY_BACKWARD(gelu_backward));
      },
      py::arg("input"), py::arg("grad"), "grad * GELU'(input), elementwise.");
  m.def(
      "gelu_tanh", [](const py::array& x) { return unary("gelu", x, PE_UNARY(gelu_tanh)); },
      py::arg("input"), "tanh GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).");
  m.def(
      "gelu_tanh_backward",
      [](const py::array& x, const py::array& g) {
        return unary_backward("gelu", x, g, PE_UNARY_BACKWARD(gelu_tanh_backward));
      },
      py::arg("input"), py::arg("grad"), "grad * (tanh GELU)'(input), elementwise.");
  m.def(
      "silu", [](const py::array& x) { return unary("silu", x, PE_UNARY(silu)); }, py::arg("input"),
      "SiLU, x * sigmoid(x), elementwise.");
  m.def(
      "silu_backward",
      [](const py::array& x, const py::array& g) {
        return unary_backward("silu", x, g, PE_UNARY_BACKWARD(silu_backward));
      },
      py::arg("input"), py::arg("grad"), "grad * SiLU'(input), elementwise.");
}
