// _cuda bindings of the softmax family (cuda/softmax.h): device pointers (0 = absent), shapes,
// a dtype name and the caller's stream. Python (pyengine/backend/cuda.py) allocates outputs with
// CuPy and validates shapes, dtypes and targets; the checks here guard the launch itself.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "common.cuh"
#include "core/error.h"
#include "softmax.h"

namespace py = pybind11;

namespace {

using Ptr = std::uintptr_t;

template <typename T>
T* p(Ptr v) {
  return reinterpret_cast<T*>(v);
}

bool is_f32(const char* op, const std::string& dtype) {
  PE_CHECK(dtype == "float32" || dtype == "float64", op,
           "dtype must be 'float32' or 'float64' but is '", dtype, "'");
  return dtype == "float32";
}

void bind_softmax_forward(Ptr x, Ptr y, int64_t outer, int64_t dim, int64_t inner, bool log,
                          const std::string& dtype, Ptr stream) {
  const char* op = log ? "log_softmax" : "softmax";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(outer >= 0 && dim >= 0 && inner >= 0, op, "sizes must be >= 0");
  PE_CHECK(outer * dim * inner == 0 || (x != 0 && y != 0), op, "input / output are null");
  auto s = pyengine::cuda::stream_from_int(stream);
  py::gil_scoped_release nogil;
  if (f32)
    pyengine::cuda::softmax_forward<float>(outer, dim, inner, p<const float>(x), p<float>(y), log,
                                           s);
  else
    pyengine::cuda::softmax_forward<double>(outer, dim, inner, p<const double>(x), p<double>(y),
                                            log, s);
}

void bind_softmax_backward(Ptr y, Ptr dy, Ptr dx, int64_t outer, int64_t dim, int64_t inner,
                           bool log, const std::string& dtype, Ptr stream) {
  const char* op = log ? "log_softmax" : "softmax";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(outer >= 0 && dim >= 0 && inner >= 0, op, "sizes must be >= 0");
  PE_CHECK(outer * dim * inner == 0 || (y != 0 && dy != 0 && dx != 0), op, "buffers are null");
  auto s = pyengine::cuda::stream_from_int(stream);
  py::gil_scoped_release nogil;
  if (f32)
    pyengine::cuda::softmax_backward<float>(outer, dim, inner, p<const float>(y),
                                            p<const float>(dy), p<float>(dx), log, s);
  else
    pyengine::cuda::softmax_backward<double>(outer, dim, inner, p<const double>(y),
                                             p<const double>(dy), p<double>(dx), log, s);
}

void bind_cross_entropy_forward(Ptr x, Ptr target, Ptr target_prob, Ptr weight, Ptr loss,
                                Ptr sample_weight, Ptr dlogits, int64_t N, int64_t C, int64_t D,
                                int64_t ignore_index, double label_smoothing,
                                const std::string& dtype, Ptr stream) {
  constexpr const char* op = "cross_entropy";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(N >= 0 && C >= 1 && D >= 0, op, "sizes must be N, D >= 0 and C >= 1");
  PE_CHECK((target == 0) != (target_prob == 0), op,
           "exactly one of target / target_prob must be given");
  PE_CHECK(label_smoothing >= 0 && label_smoothing <= 1, op, "label_smoothing must be in [0, 1]");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::CrossEntropy<T> a;
    a.N = N;
    a.C = C;
    a.D = D;
    a.x = p<const T>(x);
    a.target = p<const int64_t>(target);
    a.target_prob = p<const T>(target_prob);
    a.weight = p<const T>(weight);
    a.ignore_index = ignore_index;
    a.label_smoothing = label_smoothing;
    a.loss = p<T>(loss);
    a.sample_weight = p<T>(sample_weight);
    a.dlogits = p<T>(dlogits);
    py::gil_scoped_release nogil;
    pyengine::cuda::cross_entropy_forward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

void bind_nll_loss_forward(Ptr x, Ptr target, Ptr weight, Ptr loss, Ptr sample_weight, int64_t N,
                           int64_t C, int64_t D, int64_t ignore_index, const std::string& dtype,
                           Ptr stream) {
  constexpr const char* op = "nll_loss";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(N >= 0 && C >= 0 && D >= 0, op, "sizes must be >= 0");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::NllLoss<T> a;
    a.N = N;
    a.C = C;
    a.D = D;
    a.x = p<const T>(x);
    a.target = p<const int64_t>(target);
    a.weight = p<const T>(weight);
    a.ignore_index = ignore_index;
    a.loss = p<T>(loss);
    a.sample_weight = p<T>(sample_weight);
    py::gil_scoped_release nogil;
    pyengine::cuda::nll_loss_forward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

void bind_nll_loss_backward(Ptr target, Ptr weight, Ptr g, Ptr dx, int64_t N, int64_t C, int64_t D,
                            int64_t ignore_index, const std::string& dtype, Ptr stream) {
  constexpr const char* op = "nll_loss";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(N >= 0 && C >= 0 && D >= 0, op, "sizes must be >= 0");
  auto s = pyengine::cuda::stream_from_int(stream);
  py::gil_scoped_release nogil;
  if (f32)
    pyengine::cuda::nll_loss_backward<float>(N, C, D, p<const int64_t>(target),
                                             p<const float>(weight), ignore_index,
                                             p<const float>(g), p<float>(dx), s);
  else
    pyengine::cuda::nll_loss_backward<double>(N, C, D, p<const int64_t>(target),
                                              p<const double>(weight), ignore_index,
                                              p<const double>(g), p<double>(dx), s);
}

}  // namespace

namespace pyengine::cuda {

void register_softmax(py::module_& m) {
  m.def("softmax_forward", &bind_softmax_forward, py::arg("x"), py::arg("y"), py::arg("outer"),
        py::arg("dim"), py::arg("inner"), py::arg("log"), py::arg("dtype"), py::arg("stream"),
        "softmax / log_softmax of an (outer, dim, inner) buffer over dim.");
  m.def("softmax_backward", &bind_softmax_backward, py::arg("y"), py::arg("dy"), py::arg("dx"),
        py::arg("outer"), py::arg("dim"), py::arg("inner"), py::arg("log"), py::arg("dtype"),
        py::arg("stream"), "dx of softmax / log_softmax from the output y.");
  m.def("cross_entropy_forward", &bind_cross_entropy_forward, py::arg("x"), py::arg("target"),
        py::arg("target_prob"), py::arg("weight"), py::arg("loss"), py::arg("sample_weight"),
        py::arg("dlogits"), py::arg("N"), py::arg("C"), py::arg("D"), py::arg("ignore_index"),
        py::arg("label_smoothing"), py::arg("dtype"), py::arg("stream"),
        "Unreduced cross_entropy (and dlogits when its pointer is not 0).");
  m.def("nll_loss_forward", &bind_nll_loss_forward, py::arg("x"), py::arg("target"),
        py::arg("weight"), py::arg("loss"), py::arg("sample_weight"), py::arg("N"), py::arg("C"),
        py::arg("D"), py::arg("ignore_index"), py::arg("dtype"), py::arg("stream"),
        "Unreduced nll_loss.");
  m.def("nll_loss_backward", &bind_nll_loss_backward, py::arg("target"), py::arg("weight"),
        py::arg("g"), py::arg("dx"), py::arg("N"), py::arg("C"), py::arg("D"),
        py::arg("ignore_index"), py::arg("dtype"), py::arg("stream"),
        "dx of the unreduced nll_loss for the per-sample gradient g.");
}

}  // namespace pyengine::cuda
