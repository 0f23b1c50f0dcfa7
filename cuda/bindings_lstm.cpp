// _cuda bindings of the recurrent layers (cuda/lstm.h): device pointers as integers,
// the layer's sizes, the caller's stream. Sizes and required pointers are checked
// here ("[lstm] ..." / "[gru] ..."); array shapes are checked by the caller
// (pyengine/backend/cuda.py), which also allocates outputs, saved arrays and scratch.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "common.cuh"
#include "core/error.h"
#include "lstm.h"

namespace py = pybind11;
using pyengine::cuda::RnnShape;

namespace {

using P = std::uintptr_t;

RnnShape make_shape(const char* op, const std::string& dtype, int64_t T, int64_t N, int64_t I,
                    int64_t H, bool batch_first, bool reverse, P lengths) {
  PE_CHECK(dtype == "float32" || dtype == "float64", op,
           "dtype must be 'float32' or 'float64' but is '", dtype, "'");
  PE_CHECK(T >= 1 && N >= 0 && I >= 0 && H >= 1, op,
           "sizes must satisfy T >= 1, N >= 0, I >= 0, H >= 1 but are T=", T, ", N=", N, ", I=", I,
           ", H=", H);
  RnnShape s;
  s.T = T;
  s.N = N;
  s.I = I;
  s.H = H;
  s.batch_first = batch_first;
  s.reverse = reverse;
  s.lengths = reinterpret_cast<const int64_t*>(lengths);
  return s;
}

void need(const char* op, const char* name, P p) {
  PE_CHECK(p != 0, op, name, " is a null pointer");
}

template <typename T>
const T* c(P p) {
  return reinterpret_cast<const T*>(p);
}
template <typename T>
T* m(P p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace

namespace pyengine::cuda {

void register_lstm(py::module_& mod) {
  mod.def(
      "lstm_layer_forward",
      [](P x, P w_ih, P w_hh, P b_ih, P b_hh, P h0, P c0, P y, int64_t ldy, P h_n, P c_n, P gates,
         P c_saved, P h_saved, int64_t T, int64_t N, int64_t I, int64_t H, bool batch_first,
         bool reverse, P lengths, const std::string& dtype, P stream) {
        const RnnShape s = make_shape("lstm", dtype, T, N, I, H, batch_first, reverse, lengths);
        for (auto [name, p] : {std::pair<const char*, P>{"x", x},
                               {"w_ih", w_ih},
                               {"w_hh", w_hh},
                               {"h0", h0},
                               {"c0", c0},
                               {"h_n", h_n},
                               {"c_n", c_n},
                               {"gates", gates},
                               {"c_saved", c_saved},
                               {"h_saved", h_saved}})
          need("lstm", name, p);
        PE_CHECK(y == 0 || ldy >= H, "lstm", "ldy must be >= H");
        py::gil_scoped_release nogil;
        const cudaStream_t st = stream_from_int(stream);
        auto run = [&](auto tag) {
          using T_ = decltype(tag);
          lstm_layer_forward<T_>(s, c<T_>(x), c<T_>(w_ih), c<T_>(w_hh), c<T_>(b_ih), c<T_>(b_hh),
                                 c<T_>(h0), c<T_>(c0), m<T_>(y), ldy, m<T_>(h_n), m<T_>(c_n),
                                 m<T_>(gates), m<T_>(c_saved), m<T_>(h_saved), st);
        };
        if (dtype == "float32")
          run(float{});
        else
          run(double{});
      },
      "One LSTM layer, one direction (cuda/lstm.h); pointers as integers, y may be 0.");
  mod.def(
      "lstm_layer_backward",
      [](P x, P w_ih, P w_hh, P c0, P gates, P c_saved, P h_saved, P dy, int64_t ldy, P dh_n,
         P dc_n, P dx, bool dx_accumulate, P dh0, P dc0, P dw_ih, P dw_hh, P db, P dgates,
         int64_t T, int64_t N, int64_t I, int64_t H, bool batch_first, bool reverse, P lengths,
         const std::string& dtype, P stream) {
        const RnnShape s = make_shape("lstm", dtype, T, N, I, H, batch_first, reverse, lengths);
        for (auto [name, p] : {std::pair<const char*, P>{"x", x},
                               {"w_ih", w_ih},
                               {"w_hh", w_hh},
                               {"c0", c0},
                               {"gates", gates},
                               {"c_saved", c_saved},
                               {"h_saved", h_saved},
                               {"dh0", dh0},
                               {"dc0", dc0},
                               {"dw_ih", dw_ih},
                               {"dw_hh", dw_hh},
                               {"dgates", dgates}})
          need("lstm", name, p);
        PE_CHECK(dy == 0 || ldy >= H, "lstm", "ldy must be >= H");
        py::gil_scoped_release nogil;
        const cudaStream_t st = stream_from_int(stream);
        auto run = [&](auto tag) {
          using T_ = decltype(tag);
          lstm_layer_backward<T_>(s, c<T_>(x), c<T_>(w_ih), c<T_>(w_hh), c<T_>(c0), c<T_>(gates),
                                  c<T_>(c_saved), c<T_>(h_saved), c<T_>(dy), ldy, c<T_>(dh_n),
                                  c<T_>(dc_n), m<T_>(dx), dx_accumulate, m<T_>(dh0), m<T_>(dc0),
                                  m<T_>(dw_ih), m<T_>(dw_hh), m<T_>(db), m<T_>(dgates), st);
        };
        if (dtype == "float32")
          run(float{});
        else
          run(double{});
      },
      "Backward of lstm_layer_forward through time (cuda/lstm.h).");
  mod.def(
      "gru_layer_forward",
      [](P x, P w_ih, P w_hh, P b_ih, P b_hh, P h0, P y, int64_t ldy, P h_n, P gates, P hn_saved,
         P h_saved, P gh, int64_t T, int64_t N, int64_t I, int64_t H, bool batch_first,
         bool reverse, P lengths, const std::string& dtype, P stream) {
        const RnnShape s = make_shape("gru", dtype, T, N, I, H, batch_first, reverse, lengths);
        for (auto [name, p] : {std::pair<const char*, P>{"x", x},
                               {"w_ih", w_ih},
                               {"w_hh", w_hh},
                               {"h0", h0},
                               {"h_n", h_n},
                               {"gates", gates},
                               {"hn_saved", hn_saved},
                               {"h_saved", h_saved},
                               {"gh", gh}})
          need("gru", name, p);
        PE_CHECK(y == 0 || ldy >= H, "gru", "ldy must be >= H");
        py::gil_scoped_release nogil;
        const cudaStream_t st = stream_from_int(stream);
        auto run = [&](auto tag) {
          using T_ = decltype(tag);
          gru_layer_forward<T_>(s, c<T_>(x), c<T_>(w_ih), c<T_>(w_hh), c<T_>(b_ih), c<T_>(b_hh),
                                c<T_>(h0), m<T_>(y), ldy, m<T_>(h_n), m<T_>(gates), m<T_>(hn_saved),
                                m<T_>(h_saved), m<T_>(gh), st);
        };
        if (dtype == "float32")
          run(float{});
        else
          run(double{});
      },
      "One GRU layer, one direction (cuda/lstm.h); gh is an N x 3H scratch array.");
  mod.def(
      "gru_layer_backward",
      [](P x, P w_ih, P w_hh, P gates, P hn_saved, P h_saved, P dy, int64_t ldy, P dh_n, P dx,
         bool dx_accumulate, P dh0, P dw_ih, P dw_hh, P db_ih, P db_hh, P dgi, P dgh, int64_t T,
         int64_t N, int64_t I, int64_t H, bool batch_first, bool reverse, P lengths,
         const std::string& dtype, P stream) {
        const RnnShape s = make_shape("gru", dtype, T, N, I, H, batch_first, reverse, lengths);
        for (auto [name, p] : {std::pair<const char*, P>{"x", x},
                               {"w_ih", w_ih},
                               {"w_hh", w_hh},
                               {"gates", gates},
                               {"hn_saved", hn_saved},
                               {"h_saved", h_saved},
                               {"dh0", dh0},
                               {"dw_ih", dw_ih},
                               {"dw_hh", dw_hh},
                               {"dgi", dgi},
                               {"dgh", dgh}})
          need("gru", name, p);
        PE_CHECK(dy == 0 || ldy >= H, "gru", "ldy must be >= H");
        py::gil_scoped_release nogil;
        const cudaStream_t st = stream_from_int(stream);
        auto run = [&](auto tag) {
          using T_ = decltype(tag);
          gru_layer_backward<T_>(s, c<T_>(x), c<T_>(w_ih), c<T_>(w_hh), c<T_>(gates),
                                 c<T_>(hn_saved), c<T_>(h_saved), c<T_>(dy), ldy, c<T_>(dh_n),
                                 m<T_>(dx), dx_accumulate, m<T_>(dh0), m<T_>(dw_ih), m<T_>(dw_hh),
                                 m<T_>(db_ih), m<T_>(db_hh), m<T_>(dgi), m<T_>(dgh), st);
        };
        if (dtype == "float32")
          run(float{});
        else
          run(double{});
      },
      "Backward of gru_layer_forward through time (cuda/lstm.h).");
}

}  // namespace pyengine::cuda
