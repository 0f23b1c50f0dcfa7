// Bindings of the norm family: batch_norm and layer_norm, forward and fused backward.
// Outputs are allocated here; every check raises "[batch_norm] ..." / "[layer_norm] ..." before
// anything is written; the kernels run without the GIL. Contracts: cpu/norm.h.
#include "cpu/norm.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A C-contiguous array of x's dtype (optional arrays: None passes).
void check_operand(const char* op, const char* name, const py::array& a, const py::array& ref) {
  check_same_dtype(op, name, a, ref);
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
}

// An optional 1-D parameter of length n.
std::optional<py::array> vector_arg(const char* op, const char* name, const py::object& o,
                                    const py::array& ref, int64_t n) {
  if (o.is_none()) return std::nullopt;
  PE_CHECK_TYPE(py::isinstance<py::array>(o), op, name, " must be a NumPy array or None");
  auto a = o.cast<py::array>();
  check_operand(op, name, a, ref);
  PE_CHECK(a.ndim() == 1 && a.shape(0) == n, op, name, " must have shape (", n, ",) but has ",
           shape_str(a));
  return a;
}

template <typename T>
const T* cptr(const std::optional<py::array>& a) {
  return a ? static_cast<const T*>(a->data()) : nullptr;
}
template <typename T>
T* mptr(std::optional<py::array>& a) {
  return a ? static_cast<T*>(a->mutable_data()) : nullptr;
}

py::array empty_like_shape(const py::array& ref, const std::vector<py::ssize_t>& shape) {
  return py::array(ref.dtype(), shape);
}

// ---------------------------------------------------------------- batch_norm

struct BnDims {
  int64_t N, C, S;
};

BnDims bn_dims(const py::array& x) {
  constexpr const char* op = "batch_norm";
  check_float(op, "input", x);
  PE_CHECK(x.ndim() >= 2, op, "input must have at least 2 dimensions (N, C, ...) but has shape ",
           shape_str(x));
  PE_CHECK(x.flags() & py::array::c_style, op, "input must be C-contiguous");
  BnDims d{x.shape(0), x.shape(1), 1};
  for (py::ssize_t i = 2; i < x.ndim(); ++i) d.S *= x.shape(i);
  return d;
}

py::tuple batch_norm_forward(const py::array& x, const py::object& weight, const py::object& bias,
                             const py::object& running_mean, const py::object& running_var,
                             bool training, double momentum, double eps) {
  constexpr const char* op = "batch_norm";
  const BnDims d = bn_dims(x);
  auto w = vector_arg(op, "weight", weight, x, d.C);
  auto b = vector_arg(op, "bias", bias, x, d.C);
  auto rm = vector_arg(op, "running_mean", running_mean, x, d.C);
  auto rv = vector_arg(op, "running_var", running_var, x, d.C);
  PE_CHECK(rm.has_value() == rv.has_value(), op,
           "running_mean and running_var must both be given or both be None");
  PE_CHECK(training || rm.has_value(), op,
           "running_mean and running_var must be given in evaluation mode (training=False)");
  if (rm) PE_CHECK(rm->writeable() && rv->writeable(), op, "running stats must be writable");
  PE_CHECK(!training || d.N * d.S > 1, op,
           "expected more than 1 value per channel when training, got input size ", shape_str(x));
  PE_CHECK(eps >= 0, op, "eps must be >= 0 but is ", eps);
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  py::array y = empty_like_shape(x, shape);
  py::array mean = empty_like_shape(x, {static_cast<py::ssize_t>(d.C)});
  py::array invstd = empty_like_shape(x, {static_cast<py::ssize_t>(d.C)});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::BatchNormForward<T> a;
    a.N = d.N;
    a.C = d.C;
    a.S = d.S;
    a.x = static_cast<const T*>(x.data());
    a.weight = cptr<T>(w);
    a.bias = cptr<T>(b);
    a.running_mean = mptr<T>(rm);
    a.running_var = mptr<T>(rv);
    a.training = training;
    a.momentum = momentum;
    a.eps = eps;
    a.y = static_cast<T*>(y.mutable_data());
    a.save_mean = static_cast<T*>(mean.mutable_data());
    a.save_invstd = static_cast<T*>(invstd.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::batch_norm_forward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return py::make_tuple(y, mean, invstd);
}

py::tuple batch_norm_backward(const py::array& dy, const py::array& x, const py::object& weight,
                              const py::array& save_mean, const py::array& save_invstd,
                              bool training, bool need_dx, bool need_dweight, bool need_dbias) {
  constexpr const char* op = "batch_norm";
  const BnDims d = bn_dims(x);
  check_operand(op, "grad_output", dy, x);
  PE_CHECK(dy.ndim() == x.ndim(), op, "grad_output has shape ", shape_str(dy), " but input has ",
           shape_str(x));
  for (py::ssize_t i = 0; i < x.ndim(); ++i)
    PE_CHECK(dy.shape(i) == x.shape(i), op, "grad_output has shape ", shape_str(dy),
             " but input has ", shape_str(x));
  auto w = vector_arg(op, "weight", weight, x, d.C);
  auto m = vector_arg(op, "save_mean", save_mean, x, d.C);
  auto s = vector_arg(op, "save_invstd", save_invstd, x, d.C);
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  std::optional<py::array> dx, dw, db;
  if (need_dx) dx = empty_like_shape(x, shape);
  if (need_dweight) dw = empty_like_shape(x, {static_cast<py::ssize_t>(d.C)});
  if (need_dbias) db = empty_like_shape(x, {static_cast<py::ssize_t>(d.C)});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::BatchNormBackward<T> a;
    a.N = d.N;
    a.C = d.C;
    a.S = d.S;
    a.dy = static_cast<const T*>(dy.data());
    a.x = static_cast<const T*>(x.data());
    a.weight = cptr<T>(w);
    a.mean = cptr<T>(m);
    a.invstd = cptr<T>(s);
    a.training = training;
    a.dx = mptr<T>(dx);
    a.dweight = mptr<T>(dw);
    a.dbias = mptr<T>(db);
    py::gil_scoped_release nogil;
    pyengine::cpu::batch_norm_backward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  auto out = [](const std::optional<py::array>& a) -> py::object {
    return a ? py::object(*a) : py::object(py::none());
  };
  return py::make_tuple(out(dx), out(dw), out(db));
}

// ---------------------------------------------------------------- layer_norm

void check_2d(const char* op, const char* name, const py::array& a) {
  PE_CHECK(a.ndim() == 2, op, name, " must be a 2-D (rows, normalized) array but has shape ",
           shape_str(a));
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
}

py::tuple layer_norm_forward(const py::array& x, const py::object& weight, const py::object& bias,
                             double eps) {
  constexpr const char* op = "layer_norm";
  check_float(op, "input", x);
  check_2d(op, "input", x);
  const int64_t M = x.shape(0), N = x.shape(1);
  auto w = vector_arg(op, "weight", weight, x, N);
  auto b = vector_arg(op, "bias", bias, x, N);
  PE_CHECK(eps >= 0, op, "eps must be >= 0 but is ", eps);
  py::array y = empty_like_shape(x, {x.shape(0), x.shape(1)});
  py::array mean = empty_like_shape(x, {static_cast<py::ssize_t>(M)});
  py::array rstd = empty_like_shape(x, {static_cast<py::ssize_t>(M)});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LayerNormForward<T> a;
    a.M = M;
    a.N = N;
    a.x = static_cast<const T*>(x.data());
    a.weight = cptr<T>(w);
    a.bias = cptr<T>(b);
    a.eps = eps;
    a.y = static_cast<T*>(y.mutable_data());
    a.mean = static_cast<T*>(mean.mutable_data());
    a.rstd = static_cast<T*>(rstd.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::layer_norm_forward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return py::make_tuple(y, mean, rstd);
}

py::tuple layer_norm_backward(const py::array& dy, const py::array& x, const py::object& weight,
                              const py::array& mean, const py::array& rstd, bool need_dx,
                              bool need_dweight, bool need_dbias) {
  constexpr const char* op = "layer_norm";
  check_float(op, "input", x);
  check_2d(op, "input", x);
  check_operand(op, "grad_output", dy, x);
  check_2d(op, "grad_output", dy);
  const int64_t M = x.shape(0), N = x.shape(1);
  PE_CHECK(dy.shape(0) == M && dy.shape(1) == N, op, "grad_output has shape ", shape_str(dy),
           " but input has ", shape_str(x));
  auto w = vector_arg(op, "weight", weight, x, N);
  auto m = vector_arg(op, "mean", mean, x, M);
  auto r = vector_arg(op, "rstd", rstd, x, M);
  std::optional<py::array> dx, dw, db;
  if (need_dx) dx = empty_like_shape(x, {x.shape(0), x.shape(1)});
  if (need_dweight) dw = empty_like_shape(x, {static_cast<py::ssize_t>(N)});
  if (need_dbias) db = empty_like_shape(x, {static_cast<py::ssize_t>(N)});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LayerNormBackward<T> a;
    a.M = M;
    a.N = N;
    a.dy = static_cast<const T*>(dy.data());
    a.x = static_cast<const T*>(x.data());
    a.weight = cptr<T>(w);
    a.mean = cptr<T>(m);
    a.rstd = cptr<T>(r);
    a.dx = mptr<T>(dx);
    a.dweight = mptr<T>(dw);
    a.dbias = mptr<T>(db);
    py::gil_scoped_release nogil;
    pyengine::cpu::layer_norm_backward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  auto out = [](const std::optional<py::array>& a) -> py::object {
    return a ? py::object(*a) : py::object(py::none());
  };
  return py::make_tuple(out(dx), out(dw), out(db));
}

}  // namespace

void pyengine::bind::register_norm(py::module_& m) {
  m.def("batch_norm_forward", &batch_norm_forward, py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("running_mean"), py::arg("running_var"), py::arg("training"),
        py::arg("momentum"), py::arg("eps"),
        "(y, save_mean, save_invstd) of batch_norm on a C-contiguous (N, C, ...) array; running "
        "stats are updated in place when training (see cpu/norm.h).");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"),
        py::arg("need_input"), py::arg("need_weight"), py::arg("need_bias"),
        "(dx, dweight, dbias) of batch_norm, fused; an entry is None when not needed.");
  m.def("layer_norm_forward", &layer_norm_forward, py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("eps"),
        "(y, mean, rstd) of layer_norm over the last dim of a C-contiguous (M, N) array.");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("need_input"),
        py::arg("need_weight"), py::arg("need_bias"),
        "(dx, dweight, dbias) of layer_norm, fused; an entry is None when not needed.");
}
