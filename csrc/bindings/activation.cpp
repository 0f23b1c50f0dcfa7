// Bindings of the activation helpers (cpu/activation.h): erf on a C-contiguous float array.
#include "cpu/activation.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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

}  // namespace

void pyengine::bind::register_activation(py::module_& m) {
  m.def("erf", &erf_array, py::arg("input"), "Elementwise erf of a C-contiguous float array.");
}
