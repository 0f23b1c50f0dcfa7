// Bindings of the recurrent family (cpu/lstm.h): one layer, one direction per
// call, forward and backward, for LSTM and GRU; plus rnn_math for tests.
// Every array is checked (dtype, C-contiguity, exact shape) before anything runs;
// outputs and saved arrays are allocated by the caller (pyengine/backend/cpu.py).
#include "cpu/lstm.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;
using pyengine::ValueError;

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + (s.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// a must have x's dtype, be C-contiguous (and writable for outputs) and have shape `shape`.
void check_array(const char* op, const char* name, const py::array& a, const py::array& x,
                 const std::vector<int64_t>& shape, bool writable) {
  check_same_dtype(op, name, a, x);
  PE_CHECK(shape_of(a) == shape, op, name, " must have shape ", shape_str(shape), " but has ",
           shape_str(shape_of(a)));
  PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
  if (writable) PE_CHECK(a.writeable(), op, name, " must be writable");
}

template <typename T>
T* ptr(const py::object& o) {
  return o.is_none() ? nullptr : static_cast<T*>(o.cast<py::array>().mutable_data());
}
template <typename T>
T* ptr(const py::array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// The shape of one layer call, read from x and the weights; gates = 4 (LSTM) or 3 (GRU).
struct Layer {
  const char* op;
  int64_t gates;
  pyengine::cpu::RnnShape s{};
  std::vector<int64_t> lengths_copy;

  Layer(const char* op_, int64_t gates_, const py::array& x, const py::array& w_ih,
        const py::array& w_hh, bool batch_first, bool reverse, const py::object& lengths)
      : op(op_), gates(gates_) {
    check_float(op, "input", x);
    PE_CHECK(x.ndim() == 3, op, "input must be 3-D but has ", x.ndim(), " dimensions");
    PE_CHECK(x.flags() & py::array::c_style, op, "input must be C-contiguous");
    PE_CHECK(w_hh.ndim() == 2 && w_hh.shape(1) >= 1 && w_hh.shape(0) == gates * w_hh.shape(1), op,
             "weight_hh must have shape (", gates, "*hidden_size, hidden_size) but has ",
             shape_str(shape_of(w_hh)));
    s.H = w_hh.shape(1);
    s.batch_first = batch_first;
    s.reverse = reverse;
    s.T = batch_first ? x.shape(1) : x.shape(0);
    s.N = batch_first ? x.shape(0) : x.shape(1);
    s.I = x.shape(2);
    PE_CHECK(s.T >= 1, op, "input must have at least one time step");
    check_array(op, "weight_ih", w_ih, x, {gates * s.H, s.I}, false);
    check_array(op, "weight_hh", w_hh, x, {gates * s.H, s.H}, false);
    s.lengths = nullptr;
    if (!lengths.is_none()) {
      auto l = lengths.cast<py::array>();
      PE_CHECK_TYPE(l.dtype().is(py::dtype::of<int64_t>()), op, "lengths must be int64 but is ",
                    dtype_name(l));
      PE_CHECK(shape_of(l) == std::vector<int64_t>{s.N}, op, "lengths must have shape (", s.N,
               ",) but has ", shape_str(shape_of(l)));
      auto u = l.unchecked<int64_t, 1>();
      lengths_copy.resize(static_cast<size_t>(s.N));
      for (int64_t n = 0; n < s.N; ++n) {
        PE_CHECK(u(n) >= 1 && u(n) <= s.T, op, "lengths must lie in [1, ", s.T, "] but lengths[", n,
                 "] is ", u(n));
        lengths_copy[static_cast<size_t>(n)] = u(n);
      }
      s.lengths = lengths_copy.data();
    }
  }

  std::vector<int64_t> state() const { return {s.N, s.H}; }
  std::vector<int64_t> rows(int64_t width) const { return {s.T * s.N, width}; }

  void check_bias(const char* name, const py::object& b, const py::array& x) const {
    if (!b.is_none()) check_array(op, name, b.cast<py::array>(), x, {gates * s.H}, false);
  }
  void check_opt(const char* name, const py::object& a, const py::array& x,
                 const std::vector<int64_t>& shape, bool writable) const {
    if (!a.is_none()) check_array(op, name, a.cast<py::array>(), x, shape, writable);
  }
  // y (or dy): same first two dims as x, last dim >= offset + H; returns ldy.
  int64_t check_y(const char* name, const py::object& y, int64_t offset, const py::array& x,
                  bool writable) const {
    if (y.is_none()) return 0;
    auto a = y.cast<py::array>();
    check_same_dtype(op, name, a, x);
    PE_CHECK(a.ndim() == 3 && a.shape(0) == x.shape(0) && a.shape(1) == x.shape(1) && offset >= 0 &&
                 a.shape(2) >= offset + s.H,
             op, name, " must have shape (", x.shape(0), ", ", x.shape(1), ", >= ", offset + s.H,
             ") but has ", shape_str(shape_of(a)));
    PE_CHECK(a.flags() & py::array::c_style, op, name, " must be C-contiguous");
    if (writable) PE_CHECK(a.writeable(), op, name, " must be writable");
    return a.shape(2);
  }
};

template <typename T>
T* yptr(const py::object& y, int64_t offset) {
  T* p = ptr<T>(y);
  return p ? p + offset : nullptr;
}

// ---------------------------------------------------------------- LSTM

void lstm_forward(const py::array& x, const py::array& w_ih, const py::array& w_hh,
                  const py::object& b_ih, const py::object& b_hh, const py::array& h0,
                  const py::array& c0, const py::object& y, int64_t y_offset, py::array& h_n,
                  py::array& c_n, const py::object& gates, const py::object& c_saved,
                  const py::object& h_saved, bool batch_first, bool reverse,
                  const py::object& lengths) {
  Layer L("lstm", 4, x, w_ih, w_hh, batch_first, reverse, lengths);
  const int64_t H = L.s.H;
  L.check_bias("bias_ih", b_ih, x);
  L.check_bias("bias_hh", b_hh, x);
  check_array("lstm", "h0", h0, x, L.state(), false);
  check_array("lstm", "c0", c0, x, L.state(), false);
  check_array("lstm", "h_n", h_n, x, L.state(), true);
  check_array("lstm", "c_n", c_n, x, L.state(), true);
  const int64_t ldy = L.check_y("output", y, y_offset, x, true);
  const int given = !gates.is_none() + !c_saved.is_none() + !h_saved.is_none();
  PE_CHECK(given == 0 || given == 3, "lstm", "give all of gates, c_saved, h_saved or none");
  L.check_opt("gates", gates, x, L.rows(4 * H), true);
  L.check_opt("c_saved", c_saved, x, L.rows(H), true);
  L.check_opt("h_saved", h_saved, x, L.rows(H), true);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LstmSaved<T> sv{ptr<T>(gates), ptr<T>(c_saved), ptr<T>(h_saved)};
    const T *px = ptr<T>(x), *pwi = ptr<T>(w_ih), *pwh = ptr<T>(w_hh), *pbi = ptr<T>(b_ih),
            *pbh = ptr<T>(b_hh), *ph0 = ptr<T>(h0), *pc0 = ptr<T>(c0);
    T *py_ = yptr<T>(y, y_offset), *phn = ptr<T>(h_n), *pcn = ptr<T>(c_n);
    py::gil_scoped_release nogil;
    pyengine::cpu::lstm_layer_forward<T>(L.s, px, pwi, pwh, pbi, pbh, ph0, pc0, py_, ldy, phn, pcn,
                                         sv);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
}

void lstm_backward(const py::array& x, const py::array& w_ih, const py::array& w_hh,
                   const py::array& c0, const py::array& gates, const py::array& c_saved,
                   const py::array& h_saved, const py::object& dy, int64_t y_offset,
                   const py::object& dh_n, const py::object& dc_n, const py::object& dx,
                   bool dx_accumulate, py::array& dh0, py::array& dc0, py::array& dw_ih,
                   py::array& dw_hh, const py::object& db, bool batch_first, bool reverse,
                   const py::object& lengths) {
  Layer L("lstm", 4, x, w_ih, w_hh, batch_first, reverse, lengths);
  const int64_t H = L.s.H;
  check_array("lstm", "c0", c0, x, L.state(), false);
  check_array("lstm", "gates", gates, x, L.rows(4 * H), false);
  check_array("lstm", "c_saved", c_saved, x, L.rows(H), false);
  check_array("lstm", "h_saved", h_saved, x, L.rows(H), false);
  const int64_t ldy = L.check_y("grad_output", dy, y_offset, x, false);
  L.check_opt("grad_h_n", dh_n, x, L.state(), false);
  L.check_opt("grad_c_n", dc_n, x, L.state(), false);
  L.check_opt("grad_input", dx, x, shape_of(x), true);
  check_array("lstm", "grad_h0", dh0, x, L.state(), true);
  check_array("lstm", "grad_c0", dc0, x, L.state(), true);
  check_array("lstm", "grad_weight_ih", dw_ih, x, {4 * H, L.s.I}, true);
  check_array("lstm", "grad_weight_hh", dw_hh, x, {4 * H, H}, true);
  L.check_opt("grad_bias", db, x, {4 * H}, true);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::LstmSaved<T> sv{ptr<T>(gates), ptr<T>(c_saved), ptr<T>(h_saved)};
    const T *px = ptr<T>(x), *pwi = ptr<T>(w_ih), *pwh = ptr<T>(w_hh), *pc0 = ptr<T>(c0),
            *pdy = yptr<T>(dy, y_offset), *pdhn = ptr<T>(dh_n), *pdcn = ptr<T>(dc_n);
    T *pdx = ptr<T>(dx), *pdh0 = ptr<T>(dh0), *pdc0 = ptr<T>(dc0), *pdwi = ptr<T>(dw_ih),
      *pdwh = ptr<T>(dw_hh), *pdb = ptr<T>(db);
    py::gil_scoped_release nogil;
    pyengine::cpu::lstm_layer_backward<T>(L.s, px, pwi, pwh, pc0, sv, pdy, ldy, pdhn, pdcn, pdx,
                                          dx_accumulate, pdh0, pdc0, pdwi, pdwh, pdb);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
}

// ---------------------------------------------------------------- GRU

void gru_forward(const py::array& x, const py::array& w_ih, const py::array& w_hh,
                 const py::object& b_ih, const py::object& b_hh, const py::array& h0,
                 const py::object& y, int64_t y_offset, py::array& h_n, const py::object& gates,
                 const py::object& hn_saved, const py::object& h_saved, bool batch_first,
                 bool reverse, const py::object& lengths) {
  Layer L("gru", 3, x, w_ih, w_hh, batch_first, reverse, lengths);
  const int64_t H = L.s.H;
  L.check_bias("bias_ih", b_ih, x);
  L.check_bias("bias_hh", b_hh, x);
  check_array("gru", "h0", h0, x, L.state(), false);
  check_array("gru", "h_n", h_n, x, L.state(), true);
  const int64_t ldy = L.check_y("output", y, y_offset, x, true);
  const int given = !gates.is_none() + !hn_saved.is_none() + !h_saved.is_none();
  PE_CHECK(given == 0 || given == 3, "gru", "give all of gates, hn_saved, h_saved or none");
  L.check_opt("gates", gates, x, L.rows(3 * H), true);
  L.check_opt("hn_saved", hn_saved, x, L.rows(H), true);
  L.check_opt("h_saved", h_saved, x, L.rows(H), true);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::GruSaved<T> sv{ptr<T>(gates), ptr<T>(hn_saved), ptr<T>(h_saved)};
    const T *px = ptr<T>(x), *pwi = ptr<T>(w_ih), *pwh = ptr<T>(w_hh), *pbi = ptr<T>(b_ih),
            *pbh = ptr<T>(b_hh), *ph0 = ptr<T>(h0);
    T *py_ = yptr<T>(y, y_offset), *phn = ptr<T>(h_n);
    py::gil_scoped_release nogil;
    pyengine::cpu::gru_layer_forward<T>(L.s, px, pwi, pwh, pbi, pbh, ph0, py_, ldy, phn, sv);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
}

void gru_backward(const py::array& x, const py::array& w_ih, const py::array& w_hh,
                  const py::array& gates, const py::array& hn_saved, const py::array& h_saved,
                  const py::object& dy, int64_t y_offset, const py::object& dh_n,
                  const py::object& dx, bool dx_accumulate, py::array& dh0, py::array& dw_ih,
                  py::array& dw_hh, const py::object& db_ih, const py::object& db_hh,
                  bool batch_first, bool reverse, const py::object& lengths) {
  Layer L("gru", 3, x, w_ih, w_hh, batch_first, reverse, lengths);
  const int64_t H = L.s.H;
  check_array("gru", "gates", gates, x, L.rows(3 * H), false);
  check_array("gru", "hn_saved", hn_saved, x, L.rows(H), false);
  check_array("gru", "h_saved", h_saved, x, L.rows(H), false);
  const int64_t ldy = L.check_y("grad_output", dy, y_offset, x, false);
  L.check_opt("grad_h_n", dh_n, x, L.state(), false);
  L.check_opt("grad_input", dx, x, shape_of(x), true);
  check_array("gru", "grad_h0", dh0, x, L.state(), true);
  check_array("gru", "grad_weight_ih", dw_ih, x, {3 * H, L.s.I}, true);
  check_array("gru", "grad_weight_hh", dw_hh, x, {3 * H, H}, true);
  L.check_opt("grad_bias_ih", db_ih, x, {3 * H}, true);
  L.check_opt("grad_bias_hh", db_hh, x, {3 * H}, true);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    pyengine::cpu::GruSaved<T> sv{ptr<T>(gates), ptr<T>(hn_saved), ptr<T>(h_saved)};
    const T *px = ptr<T>(x), *pwi = ptr<T>(w_ih), *pwh = ptr<T>(w_hh), *pdy = yptr<T>(dy, y_offset),
            *pdhn = ptr<T>(dh_n);
    T *pdx = ptr<T>(dx), *pdh0 = ptr<T>(dh0), *pdwi = ptr<T>(dw_ih), *pdwh = ptr<T>(dw_hh),
      *pdbi = ptr<T>(db_ih), *pdbh = ptr<T>(db_hh);
    py::gil_scoped_release nogil;
    pyengine::cpu::gru_layer_backward<T>(L.s, px, pwi, pwh, sv, pdy, ldy, pdhn, pdx, dx_accumulate,
                                         pdh0, pdwi, pdwh, pdbi, pdbh);
  };
  if (is_f32(x))
    run(float{});
  else
    run(double{});
}

void rnn_math(const std::string& fn, const py::array& x, py::array& out) {
  int f = -1;
  if (fn == "exp") f = 0;
  if (fn == "sigmoid") f = 1;
  if (fn == "tanh") f = 2;
  PE_CHECK(f >= 0, "rnn_math", "fn must be 'exp', 'sigmoid' or 'tanh' but is '", fn, "'");
  check_float("rnn_math", "x", x);
  check_array("rnn_math", "out", out, x, shape_of(x), true);
  PE_CHECK(x.flags() & py::array::c_style, "rnn_math", "x must be C-contiguous");
  const int64_t n = x.size();
  if (is_f32(x)) {
    const float* px = ptr<float>(x);
    float* po = ptr<float>(out);
    py::gil_scoped_release nogil;
    pyengine::cpu::rnn_math<float>(f, n, px, po);
  } else {
    const double* px = ptr<double>(x);
    double* po = ptr<double>(out);
    py::gil_scoped_release nogil;
    pyengine::cpu::rnn_math<double>(f, n, px, po);
  }
}

}  // namespace

void pyengine::bind::register_lstm(py::module_& m) {
  m.def("lstm_layer_forward", &lstm_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("h0"), py::arg("c0"), py::arg("y"),
        py::arg("y_offset"), py::arg("h_n"), py::arg("c_n"), py::arg("gates"), py::arg("c_saved"),
        py::arg("h_saved"), py::arg("batch_first"), py::arg("reverse"), py::arg("lengths"),
        "One LSTM layer, one direction (cpu/lstm.h): y[..., off:off+H], h_n, c_n and the saved "
        "arrays are overwritten.");
  m.def("lstm_layer_backward", &lstm_backward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("c0"), py::arg("gates"), py::arg("c_saved"), py::arg("h_saved"), py::arg("dy"),
        py::arg("y_offset"), py::arg("dh_n"), py::arg("dc_n"), py::arg("dx"),
        py::arg("dx_accumulate"), py::arg("dh0"), py::arg("dc0"), py::arg("dw_ih"),
        py::arg("dw_hh"), py::arg("db"), py::arg("batch_first"), py::arg("reverse"),
        py::arg("lengths"), "Backward of lstm_layer_forward through time (cpu/lstm.h).");
  m.def("gru_layer_forward", &gru_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("h0"), py::arg("y"), py::arg("y_offset"),
        py::arg("h_n"), py::arg("gates"), py::arg("hn_saved"), py::arg("h_saved"),
        py::arg("batch_first"), py::arg("reverse"), py::arg("lengths"),
        "One GRU layer, one direction (cpu/lstm.h).");
  m.def("gru_layer_backward", &gru_backward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("gates"), py::arg("hn_saved"), py::arg("h_saved"), py::arg("dy"),
        py::arg("y_offset"), py::arg("dh_n"), py::arg("dx"), py::arg("dx_accumulate"),
        py::arg("dh0"), py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db_ih"), py::arg("db_hh"),
        py::arg("batch_first"), py::arg("reverse"), py::arg("lengths"),
        "Backward of gru_layer_forward through time (cpu/lstm.h).");
  m.def("rnn_math", &rnn_math, py::arg("fn"), py::arg("x"), py::arg("out"),
        "out = fn(x) with the vector math of the LSTM/GRU kernels (fn: exp, sigmoid, tanh).");
}
