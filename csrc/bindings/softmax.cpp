// Bindings of the softmax family: softmax / log_softmax (forward, backward), cross_entropy
// (fused forward + dlogits) and nll_loss. Outputs are allocated here; every check raises
// "[op] ..." before anything is written (targets are validated in full before the kernel runs);
// the kernels run without the GIL. Contracts: cpu/softmax.h.
#include "cpu/softmax.h"

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

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::vector<py::ssize_t> shape_vec(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

void check_contig(const char* op, const char* name, const py::array& a) {
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
}

void check_same_shape(const char* op, const char* name, const py::array& a, const py::array& ref,
                      const char* ref_name) {
  bool same = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == ref.shape(i);
  PE_CHECK(same, op, name, " has shape ", shape_of(a), " but ", ref_name, " has shape ",
           shape_of(ref));
}

struct Dims {
  int64_t outer = 1, dim = 1, inner = 1;
};

Dims split_at(const char* op, const py::array& x, int64_t dim) {
  const int64_t nd = x.ndim();
  const int64_t lo = nd == 0 ? -1 : -nd, hi = nd == 0 ? 0 : nd - 1;
  PE_CHECK(dim >= lo && dim <= hi, op, "dim ", dim, " is out of range for a tensor of ", nd,
           " dimensions (expected [", lo, ", ", hi, "])");
  Dims d;
  if (nd == 0) return d;
  if (dim < 0) dim += nd;
  for (int64_t i = 0; i < dim; ++i) d.outer *= x.shape(i);
  d.dim = x.shape(dim);
  for (int64_t i = dim + 1; i < nd; ++i) d.inner *= x.shape(i);
  return d;
}

py::array softmax_forward(const py::array& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_float(op, "input", x);
  check_contig(op, "input", x);
  const Dims d = split_at(op, x, dim);
  py::array y(x.dtype(), shape_vec(x));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(y.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::softmax_forward<T>(d.outer, d.dim, d.inner, xp, yp, log);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return y;
}

py::array softmax_backward(const py::array& y, const py::array& dy, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_float(op, "output", y);
  check_contig(op, "output", y);
  check_same_dtype(op, "grad_output", dy, y);
  check_contig(op, "grad_output", dy);
  check_same_shape(op, "grad_output", dy, y, "output");
  const Dims d = split_at(op, y, dim);
  py::array dx(y.dtype(), shape_vec(y));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* yp = static_cast<const T*>(y.data());
    const T* gp = static_cast<const T*>(dy.data());
    T* dp = static_cast<T*>(dx.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::softmax_backward<T>(d.outer, d.dim, d.inner, yp, gp, dp, log);
  };
  if (is_f32(y))
    run(float{});
  else
    run(double{});
  return dx;
}

// ---------------------------------------------------------------- losses

// Input (N, C, d1, ...): N, C, D = prod(d).
struct LossDims {
  int64_t N, C, D;
};

LossDims loss_dims(const char* op, const py::array& x) {
  check_float(op, "input", x);
  check_contig(op, "input", x);
  PE_CHECK(x.ndim() >= 2, op, "input must have shape (N, C, d1, ...) but has shape ", shape_of(x));
  LossDims d{x.shape(0), x.shape(1), 1};
  for (py::ssize_t i = 2; i < x.ndim(); ++i) d.D *= x.shape(i);
  return d;
}

// Class-index target (N, d1, ...), int64, every value in [0, C) or == ignore_index.
void check_class_target(const char* op, const py::array& t, const py::array& x, int64_t C,
                        int64_t ignore_index) {
  PE_CHECK_TYPE(t.dtype().is(py::dtype::of<int64_t>()), op,
                "class-index target must be int64 but is ", dtype_name(t));
  check_contig(op, "target", t);
  bool ok = t.ndim() == x.ndim() - 1 && (t.ndim() == 0 || t.shape(0) == x.shape(0));
  for (py::ssize_t i = 1; ok && i < t.ndim(); ++i) ok = t.shape(i) == x.shape(i + 1);
  PE_CHECK(ok, op, "target has shape ", shape_of(t), " but input ", shape_of(x),
           " needs a target of shape (N, d1, ...) = input's shape without dim 1");
  const int64_t* p = static_cast<const int64_t*>(t.data());
  for (py::ssize_t i = 0; i < t.size(); ++i) {
    const int64_t v = p[i];
    PE_CHECK(v == ignore_index || (v >= 0 && v < C), op, "target ", v,
             " is out of bounds: expected a class index in [0, ", C, ") or ignore_index (",
             ignore_index, ")");
  }
}

std::optional<py::array> class_weight(const char* op, const py::object& o, const py::array& x,
                                      int64_t C) {
  if (o.is_none()) return std::nullopt;
  PE_CHECK_TYPE(py::isinstance<py::array>(o), op, "weight must be a NumPy array or None");
  auto w = o.cast<py::array>();
  check_same_dtype(op, "weight", w, x);
  check_contig(op, "weight", w);
  PE_CHECK(w.ndim() == 1 && w.shape(0) == C, op, "weight must have shape (", C,
           ",) (one per class) but has shape ", shape_of(w));
  return w;
}

std::vector<py::ssize_t> sample_shape(const py::array& x) {
  std::vector<py::ssize_t> s{x.shape(0)};
  for (py::ssize_t i = 2; i < x.ndim(); ++i) s.push_back(x.shape(i));
  return s;
}

py::tuple cross_entropy_forward(const py::array& x, const py::array& target,
                                const py::object& weight, int64_t ignore_index,
                                double label_smoothing, bool need_grad) {
  constexpr const char* op = "cross_entropy";
  const LossDims d = loss_dims(op, x);
  PE_CHECK(d.C >= 1, op, "input must have at least one class but has shape ", shape_of(x));
  PE_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
           "label_smoothing must be in [0, 1] but is ", label_smoothing);
  auto w = class_weight(op, weight, x, d.C);
  const bool probs = target.dtype().kind() == 'f';
  if (probs) {
    check_same_dtype(op, "target (probabilities)", target, x);
    check_contig(op, "target", target);
    check_same_shape(op, "target (probabilities)", target, x, "input");
  } else {
    check_class_target(op, target, x, d.C, ignore_index);
  }
  py::array loss(x.dtype(), sample_shape(x));
  py::array sw(x.dtype(), sample_shape(x));
  std::optional<py::array> dl;
  if (need_grad) dl = py::array(x.dtype(), shape_vec(x));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::CrossEntropy<T> a;
    a.N = d.N;
    a.C = d.C;
    a.D = d.D;
    a.x = static_cast<const T*>(x.data());
    if (probs)
      a.target_prob = static_cast<const T*>(target.data());
    else
      a.target = static_cast<const int64_t*>(target.data());
    a.weight = w ? static_cast<const T*>(w->data()) : nullptr;
    a.ignore_index = ignore_index;
    a.label_smoothing = label_smoothing;
    a.loss = static_cast<T*>(loss.mutable_data());
    a.sample_weight = static_cast<T*>(sw.mutable_data());
    a.dlogits = dl ? static_cast<T*>(dl->mutable_data()) : nullptr;
    py::gil_scoped_release nogil;
    pyengine::cpu::cross_entropy_forward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return py::make_tuple(loss, sw, dl ? py::object(*dl) : py::object(py::none()));
}

py::tuple nll_loss_forward(const py::array& x, const py::array& target, const py::object& weight,
                           int64_t ignore_index) {
  constexpr const char* op = "nll_loss";
  const LossDims d = loss_dims(op, x);
  auto w = class_weight(op, weight, x, d.C);
  check_class_target(op, target, x, d.C, ignore_index);
  py::array loss(x.dtype(), sample_shape(x));
  py::array sw(x.dtype(), sample_shape(x));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::NllLoss<T> a;
    a.N = d.N;
    a.C = d.C;
    a.D = d.D;
    a.x = static_cast<const T*>(x.data());
    a.target = static_cast<const int64_t*>(target.data());
    a.weight = w ? static_cast<const T*>(w->data()) : nullptr;
    a.ignore_index = ignore_index;
    a.loss = static_cast<T*>(loss.mutable_data());
    a.sample_weight = static_cast<T*>(sw.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::nll_loss_forward<T>(a);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return py::make_tuple(loss, sw);
}

// dx (input's shape) from the per-sample gradient g (target's shape).
py::array nll_loss_backward(const py::array& x, const py::array& target, const py::object& weight,
                            int64_t ignore_index, const py::array& g) {
  constexpr const char* op = "nll_loss";
  const LossDims d = loss_dims(op, x);
  auto w = class_weight(op, weight, x, d.C);
  check_class_target(op, target, x, d.C, ignore_index);
  check_same_dtype(op, "grad_output", g, x);
  check_contig(op, "grad_output", g);
  check_same_shape(op, "grad_output", g, target, "target");
  py::array dx(x.dtype(), shape_vec(x));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const int64_t* tp = static_cast<const int64_t*>(target.data());
    const T* wp = w ? static_cast<const T*>(w->data()) : nullptr;
    const T* gp = static_cast<const T*>(g.data());
    T* dp = static_cast<T*>(dx.mutable_data());
    py::gil_scoped_release nogil;
    pyengine::cpu::nll_loss_backward<T>(d.N, d.C, d.D, tp, wp, ignore_index, gp, dp);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
  return dx;
}

}  // namespace

void pyengine::bind::register_softmax(py::module_& m) {
  m.def("softmax_forward", &softmax_forward, py::arg("input"), py::arg("dim"), py::arg("log"),
        "softmax (log=False) or log_softmax (log=True) of a C-contiguous array over dim.");
  m.def("softmax_backward", &softmax_backward, py::arg("output"), py::arg("grad_output"),
        py::arg("dim"), py::arg("log"), "dx of softmax / log_softmax from its output y and dy.");
  m.def("cross_entropy_forward", &cross_entropy_forward, py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
        py::arg("need_grad"),
        "(loss, sample_weight, dlogits or None): unreduced cross_entropy of (N, C, d...) logits "
        "with class-index (int64) or probability targets; see cpu/softmax.h.");
  m.def("nll_loss_forward", &nll_loss_forward, py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("ignore_index"),
        "(loss, sample_weight): unreduced nll_loss of (N, C, d...) log-probabilities.");
  m.def("nll_loss_backward", &nll_loss_backward, py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("ignore_index"), py::arg("grad_output"),
        "dx of the unreduced nll_loss for the per-sample gradient grad_output.");
}
