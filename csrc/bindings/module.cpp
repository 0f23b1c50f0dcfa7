// pyengine._C: argument checks -> release the GIL -> call the kernel.
// Each op family registers its functions from csrc/bindings/<family>.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings/register.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/parallel.h"

namespace py = pybind11;
using pyengine::TypeError;

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyengine CPU kernels";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });

  m.attr("__version__") = PYENGINE_VERSION;
  m.attr("allocator") = pyengine::tune_allocator();
  m.def("trim_memory", &pyengine::trim_memory, py::call_guard<py::gil_scoped_release>());
  m.def("get_num_threads", &pyengine::get_num_threads);
  m.def("set_num_threads", &pyengine::set_num_threads, py::arg("n"));
  m.def("openmp_enabled", &pyengine::openmp_enabled);
  m.def("get_cpu_isa", [] { return std::string(pyengine::isa_name(pyengine::active_isa())); });
  m.def(
      "set_cpu_isa",
      [](const std::string& name) { pyengine::set_active_isa(pyengine::parse_isa(name)); },
      py::arg("name"));
  m.def("supported_cpu_isas", &pyengine::supported_isas);
  m.def("best_cpu_isa", [] { return std::string(pyengine::isa_name(pyengine::best_isa())); });
  m.def("cpu_flags", &pyengine::cpu_flags);

  pyengine::bind::register_gemm(m);
  pyengine::bind::register_attention(m);
  pyengine::bind::register_conv(m);
  pyengine::bind::register_norm(m);
  pyengine::bind::register_softmax(m);
  pyengine::bind::register_activation(m);
  pyengine::bind::register_lstm(m);
  pyengine::bind::register_pool(m);
}
