// Elementwise special functions the activations need and NumPy lacks, and fused GELU (exact
// and tanh) and SiLU (pyengine/ops/activation.py composes the other activations in NumPy /
// Tensor ops).
//   erf: y[i] = erf(x[i]) for n elements, y overwritten (may alias x). float32: a vectorized
//   polynomial / exp form per ISA (cpu/isa/activation_impl.h), within 2.5 ulp; with AVX-512 a
//   16-interval polynomial table, within 1.9 ulp; float64: std::erf.
// Threads: OpenMP over blocks of elements, pyengine::get_num_threads(); the caller holds no GIL.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

template <typename T>
void erf(int64_t n, const T* x, T* y);
template <>
void erf<float>(int64_t n, const float* x, float* y);
template <>
void erf<double>(int64_t n, const double* x, double* y);

// gelu: y[i] = x[i] Phi(x[i]) (exact GELU); gelu_backward: dx[i] = g[i] (Phi(x[i]) +
// x[i] phi(x[i])). Outputs overwritten (y may alias x, dx may alias g). float32 vectorized
// per ISA, float64 through libm.
template <typename T>
void gelu(int64_t n, const T* x, T* y);
template <typename T>
void gelu_backward(int64_t n, const T* x, const T* g, T* dx);
template <>
void gelu<float>(int64_t n, const float* x, float* y);
template <>
void gelu<double>(int64_t n, const double* x, double* y);
template <>
void gelu_backward<float>(int64_t n, const float* x, const float* g, float* dx);
template <>
void gelu_backward<double>(int64_t n, const double* x, const double* g, double* dx);

// The same contracts for the tanh GELU, y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
// and SiLU, y = x sigmoid(x), and their backwards dx = g * y'(x). float32 vectorized per ISA
// (computed as x sigmoid(2u) and x sigmoid(x) from one exp), float64 through libm.
template <typename T>
void gelu_tanh(int64_t n, const T* x, T* y);
template <typename T>
void gelu_tanh_backward(int64_t n, const T* x, const T* g, T* dx);
template <typename T>
void silu(int64_t n, const T* x, T* y);
template <typename T>
void silu_backward(int64_t n, const T* x, const T* g, T* dx);
template <>
void gelu_tanh<float>(int64_t n, const float* x, float* y);
template <>
void gelu_tanh<double>(int64_t n, const double* x, double* y);
template <>
void gelu_tanh_backward<float>(int64_t n, const float* x, const float* g, float* dx);
template <>
void gelu_tanh_backward<double>(int64_t n, const double* x, const double* g, double* dx);
template <>
void silu<float>(int64_t n, const float* x, float* y);
template <>
void silu<double>(int64_t n, const double* x, double* y);
template <>
void silu_backward<float>(int64_t n, const float* x, const float* g, float* dx);
template <>
void silu_backward<double>(int64_t n, const double* x, const double* g, double* dx);

}  // namespace pyengine::cpu
