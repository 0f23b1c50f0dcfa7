// _cuda bindings of the norm family (cuda/norm.h): device pointers (0 = absent), shapes, a dtype
// name and the caller's stream. Python (pyengine/backend/cuda.py) allocates the outputs with
// CuPy and checks shapes and dtypes; the checks here guard the launch itself.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "common.cuh"
#include "core/error.h"
#include "norm.h"

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

void bind_batch_norm_forward(Ptr x, Ptr weight, Ptr bias, Ptr rm, Ptr rv, Ptr y, Ptr mean,
                             Ptr invstd, int64_t N, int64_t C, int64_t S, bool training,
                             double momentum, double eps, const std::string& dtype, Ptr stream) {
  constexpr const char* op = "batch_norm";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(N >= 0 && C >= 0 && S >= 0, op, "sizes must be >= 0 but are ", N, ", ", C, ", ", S);
  PE_CHECK((rm == 0) == (rv == 0), op, "running_mean and running_var must both be given or not");
  PE_CHECK(training || rm != 0, op, "running stats are required when training=False");
  PE_CHECK(!training || N * S > 1, op, "expected more than 1 value per channel when training");
  PE_CHECK(C == 0 || (mean != 0 && invstd != 0), op, "save_mean / save_invstd are null");
  PE_CHECK(N * C * S == 0 || (x != 0 && y != 0), op, "input / output are null");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::BatchNormForward<T> a;
    a.N = N;
    a.C = C;
    a.S = S;
    a.x = p<const T>(x);
    a.weight = p<const T>(weight);
    a.bias = p<const T>(bias);
    a.running_mean = p<T>(rm);
    a.running_var = p<T>(rv);
    a.training = training;
    a.momentum = momentum;
    a.eps = eps;
    a.y = p<T>(y);
    a.save_mean = p<T>(mean);
    a.save_invstd = p<T>(invstd);
    py::gil_scoped_release nogil;
    pyengine::cuda::batch_norm_forward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

void bind_batch_norm_backward(Ptr dy, Ptr x, Ptr weight, Ptr mean, Ptr invstd, Ptr dx, Ptr dweight,
                              Ptr dbias, int64_t N, int64_t C, int64_t S, bool training,
                              const std::string& dtype, Ptr stream) {
  constexpr const char* op = "batch_norm";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(N >= 0 && C >= 0 && S >= 0, op, "sizes must be >= 0 but are ", N, ", ", C, ", ", S);
  PE_CHECK(C == 0 || (mean != 0 && invstd != 0), op, "save_mean / save_invstd are null");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::BatchNormBackward<T> a;
    a.N = N;
    a.C = C;
    a.S = S;
    a.dy = p<const T>(dy);
    a.x = p<const T>(x);
    a.weight = p<const T>(weight);
    a.mean = p<const T>(mean);
    a.invstd = p<const T>(invstd);
    a.training = training;
    a.dx = p<T>(dx);
    a.dweight = p<T>(dweight);
    a.dbias = p<T>(dbias);
    py::gil_scoped_release nogil;
    pyengine::cuda::batch_norm_backward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

void bind_layer_norm_forward(Ptr x, Ptr weight, Ptr bias, Ptr y, Ptr mean, Ptr rstd, int64_t M,
                             int64_t N, double eps, const std::string& dtype, Ptr stream) {
  constexpr const char* op = "layer_norm";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(M >= 0 && N >= 0, op, "sizes must be >= 0 but are ", M, ", ", N);
  PE_CHECK(M == 0 || (mean != 0 && rstd != 0), op, "mean / rstd are null");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LayerNormForward<T> a;
    a.M = M;
    a.N = N;
    a.x = p<const T>(x);
    a.weight = p<const T>(weight);
    a.bias = p<const T>(bias);
    a.eps = eps;
    a.y = p<T>(y);
    a.mean = p<T>(mean);
    a.rstd = p<T>(rstd);
    py::gil_scoped_release nogil;
    pyengine::cuda::layer_norm_forward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

void bind_layer_norm_backward(Ptr dy, Ptr x, Ptr weight, Ptr mean, Ptr rstd, Ptr dx, Ptr dweight,
                              Ptr dbias, int64_t M, int64_t N, const std::string& dtype,
                              Ptr stream) {
  constexpr const char* op = "layer_norm";
  const bool f32 = is_f32(op, dtype);
  PE_CHECK(M >= 0 && N >= 0, op, "sizes must be >= 0 but are ", M, ", ", N);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LayerNormBackward<T> a;
    a.M = M;
    a.N = N;
    a.dy = p<const T>(dy);
    a.x = p<const T>(x);
    a.weight = p<const T>(weight);
    a.mean = p<const T>(mean);
    a.rstd = p<const T>(rstd);
    a.dx = p<T>(dx);
    a.dweight = p<T>(dweight);
    a.dbias = p<T>(dbias);
    py::gil_scoped_release nogil;
    pyengine::cuda::layer_norm_backward<T>(a, pyengine::cuda::stream_from_int(stream));
  };
  if (f32)
    run(float{});
  else
    run(double{});
}

}  // namespace

namespace pyengine::cuda {

void register_norm(py::module_& m) {
  m.def("batch_norm_forward", &bind_batch_norm_forward, py::arg("x"), py::arg("weight"),
        py::arg("bias"), py::arg("running_mean"), py::arg("running_var"), py::arg("y"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("N"), py::arg("C"), py::arg("S"),
        py::arg("training"), py::arg("momentum"), py::arg("eps"), py::arg("dtype"),
        py::arg("stream"), "batch_norm forward on (N, C, S) device buffers (see cuda/norm.h).");
  m.def("batch_norm_backward", &bind_batch_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("weight"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("dx"),
        py::arg("dweight"), py::arg("dbias"), py::arg("N"), py::arg("C"), py::arg("S"),
        py::arg("training"), py::arg("dtype"), py::arg("stream"),
        "batch_norm backward; null output pointers are not computed.");
  m.def("layer_norm_forward", &bind_layer_norm_forward, py::arg("x"), py::arg("weight"),
        py::arg("bias"), py::arg("y"), py::arg("mean"), py::arg("rstd"), py::arg("M"), py::arg("N"),
        py::arg("eps"), py::arg("dtype"), py::arg("stream"),
        "layer_norm forward over the last N elements of M rows.");
  m.def("layer_norm_backward", &bind_layer_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("dx"), py::arg("dweight"),
        py::arg("dbias"), py::arg("M"), py::arg("N"), py::arg("dtype"), py::arg("stream"),
        "layer_norm backward; null output pointers are not computed.");
}

}  // namespace pyengine::cuda
