// Shared argument checks for the _C bindings. Every check raises a Python
// exception whose message starts with "[op] ", before any memory is touched.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace pyengine::bind {
namespace py = pybind11;

inline std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline bool is_f32(const py::array& a) { return a.dtype().is(py::dtype::of<float>()); }
inline bool is_f64(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

inline void check_float(const char* op, const char* name, const py::array& a) {
  PE_CHECK_TYPE(is_f32(a) || is_f64(a), op, name, " must be float32 or float64 but is ",
                dtype_name(a));
}

inline void check_same_dtype(const char* op, const char* name, const py::array& a,
                             const py::array& ref) {
  PE_CHECK_TYPE(a.dtype().is(ref.dtype()), op, name, " has dtype ", dtype_name(a), " but ",
                dtype_name(ref), " was expected (no implicit casts)");
}

// A flat buffer: the BLAS-style entry points index it as a 1-D array.
inline void check_flat(const char* op, const char* name, const py::array& a, bool writable) {
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous (a flat buffer)");
  if (writable) PE_CHECK(a.writeable(), op, name, " must be writable");
}

// Elements a row-major (rows x cols) matrix with leading dimension ld spans.
inline int64_t span(int64_t rows, int64_t cols, int64_t ld) {
  return (rows == 0 || cols == 0) ? 0 : (rows - 1) * ld + cols;
}

}  // namespace pyengine::bind
