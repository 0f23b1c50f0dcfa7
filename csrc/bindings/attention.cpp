// Bindings of the attention family: sdpa_forward, sdpa_backward (fused
// scaled-dot-product attention, csrc/cpu/attention.h) and sdpa_dropout_mask
// (the keep mask the kernels use, for tests and references).
#include "cpu/attention.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

struct Shape4 {
  int64_t n[4];
};

Shape4 shape4(const char* name, const py::array& a) {
  PE_CHECK(a.ndim() == 4, kOp, name, " must have 4 dimensions (B, H, L, E) here but has ",
           a.ndim());
  return {{a.shape(0), a.shape(1), a.shape(2), a.shape(3)}};
}

// A (B, H, L, E) operand read in place: unit stride along E, rows at least E apart.
template <typename T>
pyengine::cpu::View4<T> view4(const char* name, const py::array& a) {
  const int64_t item = a.itemsize();
  pyengine::cpu::View4<T> v;
  v.ptr = static_cast<const T*>(a.data());
  if (a.size() == 0) {  // nothing is read: any strides will do
    v.sl = std::max<int64_t>(a.shape(3), 1);
    return v;
  }
  for (int d = 0; d < 4; ++d) {
    PE_CHECK(a.strides(d) >= 0 && a.strides(d) % item == 0, kOp, name,
             " needs non-negative strides that are multiples of its item size");
  }
  const int64_t E = a.shape(3);
  PE_CHECK(E <= 1 || a.strides(3) == item, kOp, name,
           " needs a unit stride in its last dimension; make it contiguous");
  PE_CHECK(a.shape(2) <= 1 || a.strides(2) / item >= E, kOp, name,
           " rows overlap (row stride < row length); make it contiguous");
  v.sb = a.strides(0) / item;
  v.sh = a.strides(1) / item;
  v.sl = a.shape(2) <= 1 ? std::max<int64_t>(E, 1) : std::max<int64_t>(a.strides(2) / item, 1);
  return v;
}

void check_contig(const char* name, const py::array& a) {
  PE_CHECK(a.flags() & py::array::c_style, kOp, name, " must be C-contiguous");
}

struct Parsed {
  pyengine::cpu::AttnDims d;
  pyengine::cpu::Mask4 mask;
  pyengine::cpu::AttnOptions opt;
};

Parsed parse(const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
             bool causal, double scale, double dropout_p, uint64_t seed) {
  check_float(kOp, "query", q);
  check_same_dtype(kOp, "key", k, q);
  check_same_dtype(kOp, "value", v, q);
  const Shape4 sq = shape4("query", q), sk = shape4("key", k), sv = shape4("value", v);
  for (int i = 0; i < 2; ++i) {
    PE_CHECK(sk.n[i] == sq.n[i] && sv.n[i] == sq.n[i], kOp,
             "query, key and value must agree in (B, H) = (", sq.n[0], ", ", sq.n[1], ")");
  }
  PE_CHECK(sk.n[3] == sq.n[3], kOp, "query and key head dims differ: ", sq.n[3], " vs ", sk.n[3]);
  PE_CHECK(sv.n[2] == sk.n[2], kOp, "key and value lengths differ: ", sk.n[2], " vs ", sv.n[2]);
  PE_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, kOp, "dropout_p must be in [0, 1) but is ",
           dropout_p);
  PE_CHECK(std::isfinite(scale), kOp, "scale must be finite but is ", scale);
  Parsed p;
  p.d = {sq.n[0], sq.n[1], sq.n[2], sk.n[2], sq.n[3], sv.n[3]};
  p.opt = {causal, scale, dropout_p, seed};
  if (!mask.is_none()) {
    PE_CHECK(!causal, kOp, "is_causal=True cannot be combined with an attn_mask");
    auto m = mask.cast<py::array>();
    const bool is_bool = m.dtype().is(py::dtype::of<bool>());
    PE_CHECK_TYPE(is_bool || m.dtype().is(q.dtype()), kOp, "attn_mask must be bool or ",
                  dtype_name(q), " but is ", dtype_name(m));
    const Shape4 sm = shape4("attn_mask", m);
    PE_CHECK(sm.n[0] == p.d.B && sm.n[1] == p.d.H && sm.n[2] == p.d.Lq && sm.n[3] == p.d.Lk, kOp,
             "attn_mask must be broadcast to (B, H, Lq, Lk) here");
    const int64_t item = m.itemsize();
    for (int d = 0; d < 4; ++d) {
      PE_CHECK(m.strides(d) >= 0 && m.strides(d) % item == 0, kOp,
               "attn_mask needs non-negative strides that are multiples of its item size");
    }
    p.mask = {
        m.data(),           is_bool, m.strides(0) / item, m.strides(1) / item, m.strides(2) / item,
        m.strides(3) / item};
  }
  return p;
}

template <typename T>
py::tuple forward(const py::array& q, const py::array& k, const py::array& v,
                  const py::object& mask, const Parsed& p) {
  const auto vq = view4<T>("query", q), vk = view4<T>("key", k), vv = view4<T>("value", v);
  const auto& d = p.d;
  py::array_t<T> out({d.B, d.H, d.Lq, d.Dv});
  py::array_t<T> lse({d.B, d.H, d.Lq});
  T* o = out.mutable_data();
  T* l = lse.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::sdpa_forward<T>(d, vq, vk, vv, p.mask, p.opt, o, l);
  }
  (void)mask;  // kept alive by the caller for the duration of the call
  return py::make_tuple(out, lse);
}

template <typename T>
py::tuple backward(const py::array& q, const py::array& k, const py::array& v, const py::array& out,
                   const py::array& lse, const py::array& dout, const Parsed& p) {
  const auto& d = p.d;
  const auto vq = view4<T>("query", q), vk = view4<T>("key", k), vv = view4<T>("value", v);
  py::array_t<T> dq({d.B, d.H, d.Lq, d.D});
  py::array_t<T> dk({d.B, d.H, d.Lk, d.D});
  py::array_t<T> dv({d.B, d.H, d.Lk, d.Dv});
  const T* o = static_cast<const T*>(out.data());
  const T* l = static_cast<const T*>(lse.data());
  const T* g = static_cast<const T*>(dout.data());
  T *pq = dq.mutable_data(), *pk = dk.mutable_data(), *pv = dv.mutable_data();
  {
    py::gil_scoped_release nogil;
    pyengine::cpu::sdpa_backward<T>(d, vq, vk, vv, p.mask, p.opt, o, l, g, pq, pk, pv);
  }
  return py::make_tuple(dq, dk, dv);
}

}  // namespace

void pyengine::bind::register_attention(py::module_& m) {
  m.def(
      "sdpa_forward",
      [](const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
         bool causal, double scale, double dropout_p, uint64_t seed) {
        const Parsed p = parse(q, k, v, mask, causal, scale, dropout_p, seed);
        return is_f32(q) ? forward<float>(q, k, v, mask, p) : forward<double>(q, k, v, mask, p);
      },
      py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask") = py::none(),
      py::arg("is_causal") = false, py::arg("scale") = 1.0, py::arg("dropout_p") = 0.0,
      py::arg("seed") = 0,
      "(out (B,H,Lq,Dv), lse (B,H,Lq)) of fused attention; q/k/v are (B,H,L,E) views with a unit "
      "last stride, attn_mask is None or already broadcast to (B,H,Lq,Lk). lse is +inf on fully "
      "masked rows.");
  m.def(
      "sdpa_backward",
      [](const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
         bool causal, double scale, double dropout_p, uint64_t seed, const py::array& out,
         const py::array& lse, const py::array& dout) {
        const Parsed p = parse(q, k, v, mask, causal, scale, dropout_p, seed);
        const auto& d = p.d;
        check_same_dtype(kOp, "out", out, q);
        check_same_dtype(kOp, "lse", lse, q);
        check_same_dtype(kOp, "grad_out", dout, q);
        check_contig("out", out);
        check_contig("lse", lse);
        check_contig("grad_out", dout);
        const Shape4 so = shape4("out", out), sg = shape4("grad_out", dout);
        for (const Shape4* s : {&so, &sg}) {
          PE_CHECK(s->n[0] == d.B && s->n[1] == d.H && s->n[2] == d.Lq && s->n[3] == d.Dv, kOp,
                   "out and grad_out must have shape (B, H, Lq, Dv)");
        }
        PE_CHECK(
            lse.ndim() == 3 && lse.shape(0) == d.B && lse.shape(1) == d.H && lse.shape(2) == d.Lq,
            kOp, "lse must have shape (B, H, Lq)");
        return is_f32(q) ? backward<float>(q, k, v, out, lse, dout, p)
                         : backward<double>(q, k, v, out, lse, dout, p);
      },
      py::arg("query"), py::arg("key"), py::arg("value"), py::arg("attn_mask"),
      py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"), py::arg("seed"), py::arg("out"),
      py::arg("lse"), py::arg("grad_out"),
      "(dq, dk, dv) of fused attention from the forward's out and lse (FlashAttention-2 "
      "backward: the probabilities are recomputed, never stored).");
  m.def(
      "sdpa_dropout_mask",
      [](uint64_t seed, int64_t B, int64_t H, int64_t Lq, int64_t Lk, double p) {
        PE_CHECK(B >= 0 && H >= 0 && Lq >= 0 && Lk >= 0, kOp, "sizes must be >= 0");
        PE_CHECK(p >= 0.0 && p < 1.0, kOp, "dropout_p must be in [0, 1) but is ", p);
        py::array_t<bool> keep({B, H, Lq, Lk});
        bool* k = keep.mutable_data();
        for (int64_t bh = 0; bh < B * H; ++bh)
          for (int64_t i = 0; i < Lq; ++i)
            for (int64_t j = 0; j < Lk; ++j) *k++ = pyengine::cpu::dropout_keep(seed, bh, i, j, p);
        return keep;
      },
      py::arg("seed"), py::arg("B"), py::arg("H"), py::arg("Lq"), py::arg("Lk"),
      py::arg("dropout_p"), "The keep mask (B, H, Lq, Lk) the attention kernels draw for a seed.");
}
