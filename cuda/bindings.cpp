// pyengine._cuda: device pointers + shapes + the caller's stream.
// Every binding checks its arguments (ValueError "[op] ..."), then releases
// the GIL and enqueues the kernel on the given stream; nothing synchronizes.
// cudart is linked statically, so this module imports on a machine without a
// GPU or driver; device_count() then returns 0.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common.cuh"
#include "core/error.h"
#include "gemm.h"

#ifndef PYENGINE_CUDA_ARCHS
#define PYENGINE_CUDA_ARCHS "unknown"
#endif

namespace py = pybind11;
using namespace pyengine;

namespace pyengine::cuda {
void register_attention(py::module_& m);  // bindings_attention.cpp
}  // namespace pyengine::cuda

namespace pyengine::cuda {
void register_conv(py::module_& m);  // cuda/bindings_conv.cpp
}  // namespace pyengine::cuda

namespace pyengine::cuda {
void register_lstm(py::module_& m);  // cuda/bindings_lstm.cpp
}  // namespace pyengine::cuda

namespace pyengine::cuda {
void register_pool(py::module_& m);  // cuda/bindings_pool.cpp
}  // namespace pyengine::cuda

namespace pyengine::cuda {
void register_norm(py::module_& m);     // cuda/bindings_norm.cpp
void register_softmax(py::module_& m);  // cuda/bindings_softmax.cpp
}  // namespace pyengine::cuda

namespace {

int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
      err == cudaErrorStubLibrary) {
    (void)cudaGetLastError();  // not sticky; clear it so a later launch check does not see it
    return 0;
  }
  PE_CUDA_CHECK(err, "device_count");
  return n;
}

py::list devices() {
  py::list out;
  const int n = device_count();
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp prop{};
    PE_CUDA_CHECK(cudaGetDeviceProperties(&prop, d), "devices");
    py::dict info;
    info["index"] = d;
    info["name"] = std::string(prop.name);
    info["compute_capability"] = py::make_tuple(prop.major, prop.minor);
    info["total_memory"] = static_cast<std::uint64_t>(prop.totalGlobalMem);
    info["sm_count"] = prop.multiProcessorCount;
    out.append(info);
  }
  return out;
}

int runtime_version() {
  int v = 0;
  PE_CUDA_CHECK(cudaRuntimeGetVersion(&v), "runtime_version");
  return v;
}

int driver_version() {  // 0 when no driver is installed
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

struct GemmArgs {
  bool transA, transB;
  int64_t M, N, K;
  double alpha;
  std::uintptr_t A;
  int64_t lda, strideA;
  std::uintptr_t B;
  int64_t ldb, strideB;
  double beta;
  std::uintptr_t C;
  int64_t ldc, strideC, batch;
  std::string dtype;
  std::uintptr_t stream;
  std::uintptr_t bias;
  int bias_kind, act;
};

// All checks happen here, before anything is enqueued.
void validate(const GemmArgs& a) {
  constexpr const char* op = "gemm";
  PE_CHECK(a.dtype == "float32" || a.dtype == "float64", op,
           "dtype must be 'float32' or 'float64' but is '", a.dtype, "'");
  PE_CHECK(a.M >= 0 && a.N >= 0 && a.K >= 0, op, "M, N and K must be >= 0 but are M=", a.M,
           " N=", a.N, " K=", a.K);
  PE_CHECK(a.batch >= 0, op, "batch must be >= 0 but is ", a.batch);
  PE_CHECK(a.M <= INT32_MAX && a.N <= INT32_MAX && a.K <= INT32_MAX, op,
           "M, N and K must be < 2^31 but are M=", a.M, " N=", a.N, " K=", a.K);
  // Same rules as the CPU bindings: ld >= max(1, row length as stored).
  const int64_t a_row = std::max<int64_t>(1, a.transA ? a.M : a.K);
  const int64_t b_row = std::max<int64_t>(1, a.transB ? a.K : a.N);
  const int64_t c_row = std::max<int64_t>(1, a.N);
  PE_CHECK(a.lda >= a_row, op, "lda must be >= max(1, ", a.transA ? "M" : "K", ") = ", a_row,
           " but is ", a.lda);
  PE_CHECK(a.ldb >= b_row, op, "ldb must be >= max(1, ", a.transB ? "K" : "N", ") = ", b_row,
           " but is ", a.ldb);
  PE_CHECK(a.ldc >= c_row, op, "ldc must be >= max(1, N) = ", c_row, " but is ", a.ldc);
  PE_CHECK(a.strideA >= 0 && a.strideB >= 0 && a.strideC >= 0, op,
           "batch strides must be >= 0 but are ", a.strideA, ", ", a.strideB, ", ", a.strideC);
  PE_CHECK(a.bias_kind >= 0 && a.bias_kind <= 2, op,
           "bias_kind must be 0 (none), 1 (per row) or 2 (per column) but is ", a.bias_kind);
  PE_CHECK(a.act >= 0 && a.act <= 2, op, "act must be 0 (none), 1 (relu) or 2 (gelu) but is ",
           a.act);
  const bool writes_c = a.M > 0 && a.N > 0 && a.batch > 0;
  if (!writes_c) return;
  const int64_t c_span = (a.M - 1) * a.ldc + a.N;  // elements one C matrix covers
  PE_CHECK(a.batch <= 1 || a.strideC >= c_span, op, "strideC must be >= ", c_span,
           " so that C matrices do not overlap but is ", a.strideC);
  PE_CHECK(a.C != 0, op, "C is a null pointer");
  if (a.K > 0 && a.alpha != 0.0) {
    PE_CHECK(a.A != 0, op, "A is a null pointer");
    PE_CHECK(a.B != 0, op, "B is a null pointer");
  }
  PE_CHECK(a.bias_kind == 0 || a.bias != 0, op, "bias_kind = ", a.bias_kind,
           " but bias is a null pointer");
}

template <typename T>
void run(const GemmArgs& a) {
  cuda::Epilogue<T> ep;
  ep.bias = a.bias_kind ? reinterpret_cast<const T*>(a.bias) : nullptr;
  ep.bias_kind = static_cast<cuda::BiasKind>(a.bias_kind);
  ep.act = static_cast<cuda::Act>(a.act);
  cuda::gemm_strided_batched<T>(
      a.transA, a.transB, a.M, a.N, a.K, static_cast<T>(a.alpha), reinterpret_cast<const T*>(a.A),
      a.lda, a.strideA, reinterpret_cast<const T*>(a.B), a.ldb, a.strideB, static_cast<T>(a.beta),
      reinterpret_cast<T*>(a.C), a.ldc, a.strideC, a.batch, ep, cuda::stream_from_int(a.stream));
}

void launch(const GemmArgs& a) {
  validate(a);
  py::gil_scoped_release release;
  if (a.dtype == "float32")
    run<float>(a);
  else
    run<double>(a);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyengine CUDA kernels: device pointers, shapes and the caller's stream";

  // pyengine::ValueError derives from std::invalid_argument, which pybind11
  // already maps to ValueError; CudaError is a std::runtime_error (RuntimeError).
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pyengine::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });

  m.def("device_count", &device_count,
        "Number of CUDA devices; 0 (not an error) when there is no GPU or driver.");
  m.def("devices", &devices,
        "One dict per device: index, name, compute_capability, total_memory, sm_count.");
  m.def("runtime_version", &runtime_version, "CUDA runtime version, e.g. 13000 for 13.0.");
  m.def("driver_version", &driver_version, "CUDA driver version; 0 when there is no driver.");
  m.def(
      "built_architectures", [] { return std::string(PYENGINE_CUDA_ARCHS); },
      "CUDA architectures this module was compiled for.");

  cuda::register_attention(m);

  m.def(
      "set_gemm_tile",
      [](const std::string& tile) {
        if (tile == "auto")
          cuda::set_gemm_tile(cuda::GemmTile::Auto);
        else if (tile == "128x128")
          cuda::set_gemm_tile(cuda::GemmTile::Large);
        else if (tile == "64x64")
          cuda::set_gemm_tile(cuda::GemmTile::Small);
        else
          throw ValueError(detail::concat(
              "set_gemm_tile", "tile must be 'auto', '128x128' or '64x64' but is '", tile, "'"));
      },
      py::arg("tile"), "Force the float32 GEMM block tile (for tests); 'auto' by default.");
  m.def(
      "get_gemm_tile",
      [] {
        switch (cuda::get_gemm_tile()) {
          case cuda::GemmTile::Large: return std::string("128x128");
          case cuda::GemmTile::Small: return std::string("64x64");
          default: return std::string("auto");
        }
      },
      "The float32 GEMM block tile setting.");

  m.def(
      "gemm",
      [](bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, std::uintptr_t A,
         int64_t lda, std::uintptr_t B, int64_t ldb, double beta, std::uintptr_t C, int64_t ldc,
         const std::string& dtype, std::uintptr_t stream, std::uintptr_t bias, int bias_kind,
         int act) {
        launch(GemmArgs{transA, transB, M, N,   K, alpha, A,     lda,    0,    B,         ldb,
                        0,      beta,   C, ldc, 0, 1,     dtype, stream, bias, bias_kind, act});
      },
      py::arg("transA"), py::arg("transB"), py::arg("M"), py::arg("N"), py::arg("K"),
      py::arg("alpha"), py::arg("A"), py::arg("lda"), py::arg("B"), py::arg("ldb"), py::arg("beta"),
      py::arg("C"), py::arg("ldc"), py::arg("dtype"), py::arg("stream"), py::arg("bias") = 0,
      py::arg("bias_kind") = 0, py::arg("act") = 0,
      "C = act(alpha * op(A) op(B) + beta * C + bias) on device pointers, row-major, enqueued\n"
      "on `stream` (an integer cudaStream_t). bias_kind: 0 none, 1 per row (length M), 2 per\n"
      "column (length N); act: 0 none, 1 relu, 2 gelu (exact). beta == 0 does not read C.");

  m.def(
      "gemm_strided_batched",
      [](bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, std::uintptr_t A,
         int64_t lda, int64_t strideA, std::uintptr_t B, int64_t ldb, int64_t strideB, double beta,
         std::uintptr_t C, int64_t ldc, int64_t strideC, int64_t batch, const std::string& dtype,
         std::uintptr_t stream, std::uintptr_t bias, int bias_kind, int act) {
        launch(GemmArgs{transA,  transB, M,      N,       K,         alpha, A,   lda,
                        strideA, B,      ldb,    strideB, beta,      C,     ldc, strideC,
                        batch,   dtype,  stream, bias,    bias_kind, act});
      },
      py::arg("transA"), py::arg("transB"), py::arg("M"), py::arg("N"), py::arg("K"),
      py::arg("alpha"), py::arg("A"), py::arg("lda"), py::arg("strideA"), py::arg("B"),
      py::arg("ldb"), py::arg("strideB"), py::arg("beta"), py::arg("C"), py::arg("ldc"),
      py::arg("strideC"), py::arg("batch"), py::arg("dtype"), py::arg("stream"),
      py::arg("bias") = 0, py::arg("bias_kind") = 0, py::arg("act") = 0,
      "gemm over `batch` matrices: matrix b of A starts at A + b*strideA (in elements; likewise\n"
      "B, C). strideA / strideB may be 0 (broadcast); C matrices may not overlap.");

  pyengine::cuda::register_conv(m);
  pyengine::cuda::register_lstm(m);
  pyengine::cuda::register_pool(m);
  pyengine::cuda::register_norm(m);
  pyengine::cuda::register_softmax(m);
}
