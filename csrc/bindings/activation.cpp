// Bindings of the activation helpers (cpu/activation.h): erf and the exact GELU with its
// backward, on C-contiguous float arrays.
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

py::array erf_array(const py::array& x) {
  check_float("erf", "input", x);
  PE_CHECK(x.flags() & py::array::c_style, "erf", "input must be C-contiguous");
  py::array y(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const int64_t n = x.size();
  if (is_f32(x)) {
    const float* xp = static_cast<const float*>(x.data());
    float* yp = static_cast<float*>(y.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::erf<float>(n, xp, yp);
  } else {
    const double* xp = static_cast<const double*>(x.data());
    double* yp = static_cast<double*>(y.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::erf<double>(n, xp, yp);
  }
  return y;
}

// The C-contiguous float array x of op, and a new array of its shape and dtype.
py::array like(const char* op, const py::array& x) {
  check_float(op, "input", x);
  PE_CHECK(x.flags() & py::array::c_style, op, "input must be C-contiguous");
  return py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
}

template <typename T>
void gelu_typed(const py::array& x, py::array& y) {
  const T* xp = static_cast<const T*>(x.data());
  T* yp = static_cast<T*>(y.mutable_data());
  py::gil_scoped_release nogil;
  pyengine::cpu::gelu<T>(x.size(), xp, yp);
}

py::array gelu_array(const py::array& x) {
  py::array y = like("gelu", x);
  if (is_f32(x))
    gelu_typed<float>(x, y);
  else
    gelu_typed<double>(x, y);
  return y;
}

template <typename T>
void gelu_backward_typed(const py::array& x, const py::array& g, py::array& dx) {
  const T* xp = static_cast<const T*>(x.data());
  const T* gp = static_cast<const T*>(g.data());
  T* dp = static_cast<T*>(dx.mutable_data());
  py::gil_scoped_release nogil;
  pyengine::cpu::gelu_backward<T>(x.size(), xp, gp, dp);
}

py::array gelu_backward_array(const py::array& x, const py::array& g) {
  py::array dx = like("gelu", x);
  check_float("gelu", "grad", g);
  PE_CHECK(g.flags() & py::array::c_style, "gelu", "grad must be C-contiguous");
  PE_CHECK(g.dtype().is(x.dtype()), "gelu", "grad and input dtypes differ");
  PE_CHECK(g.ndim() == x.ndim() && std::equal(x.shape(), x.shape() + x.ndim(), g.shape()), "gelu",
           "grad and input shapes differ");
  if (is_f32(x))
    gelu_backward_typed<float>(x, g, dx);
  else
    gelu_backward_typed<double>(x, g, dx);
  return dx;
}

}  // namespace

void pyengine::bind::register_activation(py::module_& m) {
  m.def("erf", &erf_array, py::arg("input"), "Elementwise erf of a C-contiguous float array.");
  m.def("gelu", &gelu_array, py::arg("input"), "Exact GELU, x * Phi(x), elementwise.");
  m.def("gelu_backward", &gelu_backward_array, py::arg("input"), py::arg("grad"),
        "grad * GELU'(input), elementwise.");
}
