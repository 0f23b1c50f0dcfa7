// Bindings of the GEMM family: gemm and gemm_strided_batched on flat buffers,
// matmul_into on 3-D views (the path of Tensor @).
#include "cpu/gemm.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "bindings/register.h"

namespace py = pybind11;
using namespace pyengine::bind;
using pyengine::TypeError;
using pyengine::ValueError;

namespace {

pyengine::cpu::Act parse_act(const std::string& s) {
  if (s == "none") return pyengine::cpu::Act::None;
  if (s == "relu") return pyengine::cpu::Act::ReLU;
  if (s == "gelu") return pyengine::cpu::Act::GELU;
  throw ValueError("[gemm] act must be 'none', 'relu' or 'gelu' but is '" + s + "'");
}

pyengine::cpu::BiasKind parse_bias_kind(const std::string& s) {
  if (s == "none") return pyengine::cpu::BiasKind::None;
  if (s == "row") return pyengine::cpu::BiasKind::PerRow;
  if (s == "col") return pyengine::cpu::BiasKind::PerCol;
  throw ValueError("[gemm] bias_kind must be 'none', 'row' or 'col' but is '" + s + "'");
}

struct GemmArgs {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc, sa, sb, sc, batch;
};

// Checks shared by gemm and gemm_strided_batched (flat buffers).
void check_gemm(const char* op, const GemmArgs& g, const py::array& A, const py::array& B,
                const py::array& C, const py::object& bias, const std::string& bias_kind) {
  PE_CHECK(g.M >= 0 && g.N >= 0 && g.K >= 0, op, "M, N, K must be >= 0 but are ", g.M, ", ", g.N,
           ", ", g.K);
  PE_CHECK(g.batch >= 0, op, "batch must be >= 0 but is ", g.batch);
  check_float(op, "C", C);
  check_same_dtype(op, "A", A, C);
  check_same_dtype(op, "B", B, C);
  check_flat(op, "A", A, false);
  check_flat(op, "B", B, false);
  check_flat(op, "C", C, true);
  const int64_t a_rows = g.ta ? g.K : g.M, a_cols = g.ta ? g.M : g.K;
  const int64_t b_rows = g.tb ? g.N : g.K, b_cols = g.tb ? g.K : g.N;
  PE_CHECK(g.lda >= std::max<int64_t>(1, a_cols), op, "lda must be >= max(1, ", a_cols, ") but is ",
           g.lda);
  PE_CHECK(g.ldb >= std::max<int64_t>(1, b_cols), op, "ldb must be >= max(1, ", b_cols, ") but is ",
           g.ldb);
  PE_CHECK(g.ldc >= std::max<int64_t>(1, g.N), op, "ldc must be >= max(1, ", g.N, ") but is ",
           g.ldc);
  PE_CHECK(g.sa >= 0 && g.sb >= 0 && g.sc >= 0, op, "batch strides must be >= 0");
  const int64_t ea = span(a_rows, a_cols, g.lda), eb = span(b_rows, b_cols, g.ldb),
                ec = span(g.M, g.N, g.ldc);
  if (g.batch > 1) {
    PE_CHECK(g.sc >= ec, op, "strideC must be >= ", ec,
             " so that C matrices do not overlap but is ", g.sc);
  }
  auto need = [&](int64_t stride, int64_t e) {
    return g.batch == 0 || e == 0 ? 0 : (g.batch - 1) * stride + e;
  };
  PE_CHECK(A.size() >= need(g.sa, ea), op, "A holds ", A.size(), " elements but ", need(g.sa, ea),
           " are needed");
  PE_CHECK(B.size() >= need(g.sb, eb), op, "B holds ", B.size(), " elements but ", need(g.sb, eb),
           " are needed");
  PE_CHECK(C.size() >= need(g.sc, ec), op, "C holds ", C.size(), " elements but ", need(g.sc, ec),
           " are needed");
  const auto kind = parse_bias_kind(bias_kind);
  if (kind != pyengine::cpu::BiasKind::None) {
    PE_CHECK(!bias.is_none(), op, "bias_kind='", bias_kind, "' needs a bias array");
    auto b = bias.cast<py::array>();
    check_same_dtype(op, "bias", b, C);
    check_flat(op, "bias", b, false);
    const int64_t n = kind == pyengine::cpu::BiasKind::PerRow ? g.M : g.N;
    PE_CHECK(b.size() >= n, op, "bias holds ", b.size(), " elements but ", n, " are needed");
  } else {
    PE_CHECK(bias.is_none(), op, "a bias was given with bias_kind='none'");
  }
}

template <typename T>
void run_gemm(const GemmArgs& g, double alpha, const py::array& A, const py::array& B, double beta,
              py::array& C, const py::object& bias, const std::string& bias_kind,
              const std::string& act) {
  pyengine::cpu::Epilogue<T> ep;
  ep.bias_kind = parse_bias_kind(bias_kind);
  ep.act = parse_act(act);
  if (!bias.is_none()) ep.bias = static_cast<const T*>(bias.cast<py::array>().data());
  const T* a = static_cast<const T*>(A.data());
  const T* b = static_cast<const T*>(B.data());
  T* c = static_cast<T*>(C.mutable_data());
  py::gil_scoped_release nogil;
  pyengine::cpu::gemm_strided_batched<T>(g.ta, g.tb, g.M, g.N, g.K, static_cast<T>(alpha), a, g.lda,
                                         g.sa, b, g.ldb, g.sb, static_cast<T>(beta), c, g.ldc, g.sc,
                                         g.batch, ep);
}

void dispatch_gemm(const char* op, const GemmArgs& g, double alpha, const py::array& A,
                   const py::array& B, double beta, py::array& C, const py::object& bias,
                   const std::string& bias_kind, const std::string& act) {
  parse_act(act);
  check_gemm(op, g, A, B, C, bias, bias_kind);
  if (is_f32(C))
    run_gemm<float>(g, alpha, A, B, beta, C, bias, bias_kind, act);
  else
    run_gemm<double>(g, alpha, A, B, beta, C, bias, bias_kind, act);
}

// ---------------------------------------------------------------- matmul on views

// One operand of matmul_into: a 3-D view (batch, rows, cols). One of the two
// trailing strides must be 1 element; the other becomes the leading dimension.
struct View {
  bool trans;
  int64_t ld, batch_stride;
};

View view_of(const char* name, const py::array& a) {
  const int64_t item = a.itemsize();
  const int nd = static_cast<int>(a.ndim());  // 2 (one matrix) or 3 (a batch)
  const int64_t rows = a.shape(nd - 2), cols = a.shape(nd - 1);
  const int64_t s0 = nd == 3 ? a.strides(0) : 0, s1 = a.strides(nd - 2), s2 = a.strides(nd - 1);
  PE_CHECK(s0 % item == 0 && s1 % item == 0 && s2 % item == 0, "matmul", name,
           " has strides that are not a multiple of its item size");
  PE_CHECK(s0 >= 0 && s1 >= 0 && s2 >= 0, "matmul", name, " has a negative stride");
  const int64_t r = std::max<int64_t>(rows, 1), c = std::max<int64_t>(cols, 1);
  if (rows == 0 || cols == 0) return {false, c, 0};  // nothing is read
  // Row-major: unit column stride, rows at least a full row apart (0 = broadcast rows: refused).
  if ((s2 == item || cols <= 1) && (rows <= 1 || s1 / item >= c))
    return {false, rows <= 1 ? c : s1 / item, s0 / item};
  if ((s1 == item || rows <= 1) && (cols <= 1 || s2 / item >= r))
    return {true, cols <= 1 ? r : s2 / item, s0 / item};
  throw ValueError(std::string("[matmul] ") + name +
                   " needs a unit stride in one of its last two dimensions; make it contiguous");
}

// out[b] = act(a[b] @ b[b] + bias); a: ([batch,] M, K), b: ([batch,] K, N), out: ([batch,] M, N)
// C-contiguous, overwritten. Batch strides of a and b may be 0 (broadcast).
void matmul_into(const py::array& a, const py::array& b, py::array& out, const py::object& bias,
                 const std::string& act) {
  const int nd = static_cast<int>(out.ndim());
  PE_CHECK((nd == 2 || nd == 3) && a.ndim() == nd && b.ndim() == nd, "matmul",
           "matmul_into expects three 2-D or three 3-D arrays");
  check_float("matmul", "a", a);
  check_same_dtype("matmul", "b", b, a);
  check_same_dtype("matmul", "out", out, a);
  const int64_t batch = nd == 3 ? out.shape(0) : 1;
  const int64_t M = a.shape(nd - 2), K = a.shape(nd - 1), N = b.shape(nd - 1);
  PE_CHECK(b.shape(nd - 2) == K, "matmul", "inner dimensions differ: ", K, " vs ", b.shape(nd - 2));
  PE_CHECK(out.shape(nd - 2) == M && out.shape(nd - 1) == N, "matmul", "out has the wrong shape");
  PE_CHECK(nd == 2 || (a.shape(0) == batch && b.shape(0) == batch), "matmul", "batch sizes differ");
  PE_CHECK((out.flags() & py::array::c_style) && out.writeable(), "matmul",
           "out must be C-contiguous and writable");
  const View va = view_of("a", a), vb = view_of("b", b);
  GemmArgs g{
      va.trans,        vb.trans,        M,     N,    K, va.ld, vb.ld, std::max<int64_t>(N, 1),
      va.batch_stride, vb.batch_stride, M * N, batch};
  std::string kind = "none";
  if (!bias.is_none()) {
    auto bb = bias.cast<py::array>();
    check_same_dtype("matmul", "bias", bb, a);
    PE_CHECK(bb.ndim() == 1 && bb.shape(0) == N && (bb.flags() & py::array::c_style), "matmul",
             "bias must be a contiguous 1-D array of length ", N);
    kind = "col";
  }
  if (is_f32(a))
    run_gemm<float>(g, 1.0, a, b, 0.0, out, bias, kind, act);
  else
    run_gemm<double>(g, 1.0, a, b, 0.0, out, bias, kind, act);
}

// a @ b for two 2-D arrays, output allocated here: the lean path of Tensor @ when no graph is
// recorded (Python overhead dominates small products). Operands without a unit stride in
// one dimension are copied to C order first.
py::array matmul2d(py::array a, py::array b) {
  PE_CHECK(a.ndim() == 2 && b.ndim() == 2, "matmul", "matmul2d expects 2-D arrays");
  PE_CHECK_TYPE(is_f32(a) || is_f64(a), "matmul", "expects float32 or float64 tensors, got ",
                dtype_name(a));
  PE_CHECK_TYPE(is_f32(b) || is_f64(b), "matmul", "expects float32 or float64 tensors, got ",
                dtype_name(b));
  PE_CHECK_TYPE(a.dtype().is(b.dtype()), "matmul", "dtypes differ: ", dtype_name(a), " and ",
                dtype_name(b), "; cast one explicitly");
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  PE_CHECK(b.shape(0) == K, "matmul", "shapes (", M, ", ", K, ") and (", b.shape(0), ", ", N,
           ") cannot be multiplied (", K, " != ", b.shape(0), ")");
  auto ready = [](const py::array& x) {
    const int64_t item = x.itemsize(), r = x.shape(0), c = x.shape(1);
    const int64_t s1 = x.strides(0), s2 = x.strides(1);
    if (r == 0 || c == 0) return true;
    if (s1 < 0 || s2 < 0 || s1 % item || s2 % item) return false;
    return ((s2 == item || c <= 1) && (r <= 1 || s1 >= c * item)) ||
           ((s1 == item || r <= 1) && (c <= 1 || s2 >= r * item));
  };
  if (!ready(a)) a = py::array::ensure(a, py::array::c_style);
  if (!ready(b)) b = py::array::ensure(b, py::array::c_style);
  py::array out(a.dtype(), std::vector<py::ssize_t>{M, N});
  if (M * N > 0) matmul_into(a, b, out, py::none(), "none");
  return out;
}

}  // namespace

void pyengine::bind::register_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const py::array& A,
         int64_t lda, const py::array& B, int64_t ldb, double beta, py::array& C, int64_t ldc,
         const py::object& bias, const std::string& bias_kind, const std::string& act) {
        GemmArgs g{ta, tb, M, N, K, lda, ldb, ldc, 0, 0, 0, 1};
        dispatch_gemm("gemm", g, alpha, A, B, beta, C, bias, bias_kind, act);
      },
      py::arg("transA"), py::arg("transB"), py::arg("M"), py::arg("N"), py::arg("K"),
      py::arg("alpha"), py::arg("A"), py::arg("lda"), py::arg("B"), py::arg("ldb"), py::arg("beta"),
      py::arg("C"), py::arg("ldc"), py::arg("bias") = py::none(), py::arg("bias_kind") = "none",
      py::arg("act") = "none",
      "C = act(alpha*op(A)*op(B) + beta*C + bias) on flat row-major buffers; C is overwritten.");
  m.def(
      "gemm_strided_batched",
      [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const py::array& A,
         int64_t lda, int64_t sa, const py::array& B, int64_t ldb, int64_t sb, double beta,
         py::array& C, int64_t ldc, int64_t sc, int64_t batch, const py::object& bias,
         const std::string& bias_kind, const std::string& act) {
        GemmArgs g{ta, tb, M, N, K, lda, ldb, ldc, sa, sb, sc, batch};
        dispatch_gemm("gemm_strided_batched", g, alpha, A, B, beta, C, bias, bias_kind, act);
      },
      py::arg("transA"), py::arg("transB"), py::arg("M"), py::arg("N"), py::arg("K"),
      py::arg("alpha"), py::arg("A"), py::arg("lda"), py::arg("strideA"), py::arg("B"),
      py::arg("ldb"), py::arg("strideB"), py::arg("beta"), py::arg("C"), py::arg("ldc"),
      py::arg("strideC"), py::arg("batch"), py::arg("bias") = py::none(),
      py::arg("bias_kind") = "none", py::arg("act") = "none",
      "Strided-batched gemm: matrix b of A starts at A[b*strideA] (likewise B, C).");
  m.def("matmul2d", &matmul2d, py::arg("a"), py::arg("b"),
        "a @ b for 2-D float arrays; returns a new C-contiguous array.");
  m.def("matmul_into", &matmul_into, py::arg("a"), py::arg("b"), py::arg("out"),
        py::arg("bias") = py::none(), py::arg("act") = "none",
        "out[b] = act(a[b] @ b[b] + bias) for 2-D or 3-D views; one trailing stride of a and b "
        "must be 1.");
}
