// Errors raised by kernels and bindings. Every message starts with "[op] ".
// ValueError / TypeError map to the Python exceptions of the same name
// (registered in bindings.cpp); check arguments before touching memory.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pyengine {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const char* op, const Args&... args) {
  std::ostringstream os;
  os << '[' << op << "] ";
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace pyengine

// PE_CHECK(cond, "gemm", "lda must be >= ", k, " but is ", lda);
#define PE_CHECK(cond, op, ...)                                                             \
  do {                                                                                      \
    if (!(cond)) throw ::pyengine::ValueError(::pyengine::detail::concat(op, __VA_ARGS__)); \
  } while (0)
#define PE_CHECK_TYPE(cond, op, ...)                                                       \
  do {                                                                                     \
    if (!(cond)) throw ::pyengine::TypeError(::pyengine::detail::concat(op, __VA_ARGS__)); \
  } while (0)
