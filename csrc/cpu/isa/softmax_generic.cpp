// Softmax kernels compiled for the generic path (flags from CMakeLists.txt); see
// cpu/isa/softmax_impl.h.
#define PE_SOFTMAX_ISA generic
#include "cpu/isa/softmax_impl.h"
