// _cuda bindings of fused attention (cuda/attention.h): device pointers,
// shapes, element strides and the caller's stream. Arguments are checked here
// (ValueError "[scaled_dot_product_attention] ...") before anything is enqueued;
// outputs and the backward's scratch are allocated by the caller (CuPy).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <climits>
#include <cstdint>
#include <string>

#include "attention.h"
#include "common.cuh"
#include "core/error.h"

namespace py = pybind11;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";
using Strides3 = std::array<int64_t, 3>;
using Strides4 = std::array<int64_t, 4>;

struct Args {
  std::string dtype;
  int64_t B, H, Lq, Lk, D, Dv;
  std::uintptr_t q;
  Strides3 qs;
  std::uintptr_t k;
  Strides3 ks;
  std::uintptr_t v;
  Strides3 vs;
  std::uintptr_t mask;
  int mask_kind;
  Strides4 ms;
  bool causal;
  double scale, dropout_p;
  uint64_t seed;
};

pyengine::cuda::AttnParams parse(const Args& a) {
  PE_CHECK(a.dtype == "float32" || a.dtype == "float64" || a.dtype == "float16", kOp,
           "dtype must be 'float32', 'float64' or 'float16' but is '", a.dtype, "'");
  for (int64_t n : {a.B, a.H, a.Lq, a.Lk, a.D, a.Dv}) {
    PE_CHECK(n >= 0 && n < INT32_MAX, kOp, "sizes must be in [0, 2^31) but one is ", n);
  }
  PE_CHECK(a.B * a.H <= 65535, kOp, "B*H must be <= 65535 on CUDA (one grid row per head) but is ",
           a.B * a.H);
  PE_CHECK(a.D <= pyengine::cuda::kMaxHeadDim && a.Dv <= pyengine::cuda::kMaxHeadDim, kOp,
           "head dims above ", pyengine::cuda::kMaxHeadDim, " are not supported on CUDA (D=", a.D,
           ", Dv=", a.Dv, ")");
  PE_CHECK(a.dropout_p >= 0.0 && a.dropout_p < 1.0, kOp, "dropout_p must be in [0, 1) but is ",
           a.dropout_p);
  PE_CHECK(a.mask_kind >= 0 && a.mask_kind <= 2, kOp, "mask_kind must be 0, 1 or 2");
  PE_CHECK(a.mask_kind == 0 || a.mask != 0, kOp, "mask_kind != 0 but the mask is null");
  PE_CHECK(!(a.causal && a.mask_kind != 0), kOp,
           "is_causal=True cannot be combined with an attn_mask");
  for (const Strides3* s : {&a.qs, &a.ks, &a.vs}) {
    for (int64_t x : *s) PE_CHECK(x >= 0, kOp, "strides must be >= 0");
  }
  for (int64_t x : a.ms) PE_CHECK(x >= 0, kOp, "mask strides must be >= 0");
  PE_CHECK(a.Lq <= 1 || a.qs[2] >= a.D, kOp, "query rows overlap (row stride < D)");
  PE_CHECK(a.Lk <= 1 || (a.ks[2] >= a.D && a.vs[2] >= a.Dv), kOp,
           "key/value rows overlap (row stride < row length)");
  pyengine::cuda::AttnParams p;
  p.B = a.B;
  p.H = a.H;
  p.Lq = a.Lq;
  p.Lk = a.Lk;
  p.D = a.D;
  p.Dv = a.Dv;
  p.q = {reinterpret_cast<const void*>(a.q), a.qs[0], a.qs[1], a.qs[2]};
  p.k = {reinterpret_cast<const void*>(a.k), a.ks[0], a.ks[1], a.ks[2]};
  p.v = {reinterpret_cast<const void*>(a.v), a.vs[0], a.vs[1], a.vs[2]};
  p.mask = {reinterpret_cast<const void*>(a.mask), a.mask_kind, a.ms[0], a.ms[1], a.ms[2], a.ms[3]};
  p.causal = a.causal;
  p.scale = a.scale;
  p.dropout_p = a.dropout_p;
  p.seed = a.seed;
  return p;
}

}  // namespace

namespace pyengine::cuda {

void register_attention(py::module_& m) {
  m.def(
      "sdpa_forward",
      [](const std::string& dtype, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
         int64_t Dv, std::uintptr_t q, Strides3 qs, std::uintptr_t k, Strides3 ks, std::uintptr_t v,
         Strides3 vs, std::uintptr_t mask, int mask_kind, Strides4 ms, bool causal, double scale,
         double dropout_p, uint64_t seed, std::uintptr_t out, std::uintptr_t lse,
         std::uintptr_t stream) {
        const AttnParams p =
            parse({dtype, B, H,  Lq,   Lk,        D,  Dv,     q,     qs,        k,
                   ks,    v, vs, mask, mask_kind, ms, causal, scale, dropout_p, seed});
        PE_CHECK(out != 0 && lse != 0, kOp, "out and lse must not be null");
        py::gil_scoped_release nogil;
        if (dtype == "float16")
          sdpa_forward_f16(p, reinterpret_cast<uint16_t*>(out), reinterpret_cast<float*>(lse),
                           stream_from_int(stream));
        else if (dtype == "float32")
          sdpa_forward<float>(p, reinterpret_cast<float*>(out), reinterpret_cast<float*>(lse),
                              stream_from_int(stream));
        else
          sdpa_forward<double>(p, reinterpret_cast<double*>(out), reinterpret_cast<double*>(lse),
                               stream_from_int(stream));
      },
      py::arg("dtype"), py::arg("B"), py::arg("H"), py::arg("Lq"), py::arg("Lk"), py::arg("D"),
      py::arg("Dv"), py::arg("q"), py::arg("q_strides"), py::arg("k"), py::arg("k_strides"),
      py::arg("v"), py::arg("v_strides"), py::arg("mask"), py::arg("mask_kind"),
      py::arg("mask_strides"), py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"),
      py::arg("seed"), py::arg("out"), py::arg("lse"), py::arg("stream"),
      "Fused attention forward: out (B,H,Lq,Dv) and lse (B,H,Lq), C-contiguous, overwritten\n"
      "(float16: lse is float32).\n"
      "q/k/v: (B,H,L,E) with element strides (b, h, row) and a unit last stride; mask_kind 0\n"
      "none, 1 bool, 2 additive, with 4 element strides (0 = broadcast).");
  m.def(
      "sdpa_backward",
      [](const std::string& dtype, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
         int64_t Dv, std::uintptr_t q, Strides3 qs, std::uintptr_t k, Strides3 ks, std::uintptr_t v,
         Strides3 vs, std::uintptr_t mask, int mask_kind, Strides4 ms, bool causal, double scale,
         double dropout_p, uint64_t seed, std::uintptr_t out, std::uintptr_t lse,
         std::uintptr_t dout, std::uintptr_t rowdot, std::uintptr_t dq, std::uintptr_t dk,
         std::uintptr_t dv, std::uintptr_t stream) {
        const AttnParams p =
            parse({dtype, B, H,  Lq,   Lk,        D,  Dv,     q,     qs,        k,
                   ks,    v, vs, mask, mask_kind, ms, causal, scale, dropout_p, seed});
        PE_CHECK(out != 0 && lse != 0 && dout != 0 && rowdot != 0 && dq != 0 && dk != 0 && dv != 0,
                 kOp, "out, lse, grad_out, rowdot, dq, dk and dv must not be null");
        py::gil_scoped_release nogil;
        if (dtype == "float16")
          sdpa_backward_f16(
              p, reinterpret_cast<const uint16_t*>(out), reinterpret_cast<const float*>(lse),
              reinterpret_cast<const uint16_t*>(dout), reinterpret_cast<float*>(rowdot),
              reinterpret_cast<uint16_t*>(dq), reinterpret_cast<uint16_t*>(dk),
              reinterpret_cast<uint16_t*>(dv), stream_from_int(stream));
        else if (dtype == "float32")
          sdpa_backward<float>(
              p, reinterpret_cast<const float*>(out), reinterpret_cast<const float*>(lse),
              reinterpret_cast<const float*>(dout), reinterpret_cast<float*>(rowdot),
              reinterpret_cast<float*>(dq), reinterpret_cast<float*>(dk),
              reinterpret_cast<float*>(dv), stream_from_int(stream));
        else
          sdpa_backward<double>(
              p, reinterpret_cast<const double*>(out), reinterpret_cast<const double*>(lse),
              reinterpret_cast<const double*>(dout), reinterpret_cast<double*>(rowdot),
              reinterpret_cast<double*>(dq), reinterpret_cast<double*>(dk),
              reinterpret_cast<double*>(dv), stream_from_int(stream));
      },
      py::arg("dtype"), py::arg("B"), py::arg("H"), py::arg("Lq"), py::arg("Lk"), py::arg("D"),
      py::arg("Dv"), py::arg("q"), py::arg("q_strides"), py::arg("k"), py::arg("k_strides"),
      py::arg("v"), py::arg("v_strides"), py::arg("mask"), py::arg("mask_kind"),
      py::arg("mask_strides"), py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"),
      py::arg("seed"), py::arg("out"), py::arg("lse"), py::arg("grad_out"), py::arg("rowdot"),
      py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("stream"),
      "Fused attention backward: dq, dk, dv (C-contiguous, overwritten) from out, lse and\n"
      "grad_out (C-contiguous); rowdot is scratch of B*H*Lq elements (float32 for float16).");
}

}  // namespace pyengine::cuda
