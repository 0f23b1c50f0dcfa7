// Include once per Python module (its PYBIND11_MODULE file), never in a kernel.
//
// Why: with GCC 13+, the standard streams and locales are set up by an object inside libstdc++
// itself, no longer by one in every file that includes <iostream>. A module linked against the
// static libstdc++ (a compiler wrapper or -static-libstdc++ can choose it silently; the GPU
// machine's image does) then never pulls that object in, and the first number written to an
// std::ostringstream (every error message: core/error.h's concat) crashed with SIGSEGV.
// std::ios_base::Init is the standard's own handle for that setup: it is counted, so with a
// shared libstdc++ it only adds one to the count.
#pragma once
#include <ios>

namespace pyengine::detail {
static const std::ios_base::Init stdlib_init;
}  // namespace pyengine::detail
