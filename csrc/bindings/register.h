// One register function per op family; module.cpp calls them all.
// A new family adds its declaration here and one call in module.cpp.
#pragma once
#include <pybind11/pybind11.h>

namespace pyengine::bind {
void register_gemm(pybind11::module_& m);
void register_attention(pybind11::module_& m);
void register_conv(pybind11::module_& m);
void register_norm(pybind11::module_& m);
void register_softmax(pybind11::module_& m);
void register_activation(pybind11::module_& m);
void register_lstm(pybind11::module_& m);
void register_pool(pybind11::module_& m);
}  // namespace pyengine::bind
